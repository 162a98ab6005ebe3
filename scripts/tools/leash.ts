/**
 * Starts a server process (the test Neo4j's JVM, the Celery test's redis-server) with bash holding it
 * on a leash: when the process that started it dies without stopping it (a test runner killed by a
 * signal), bash's stdin pipe closes and bash takes the server down too. SIGTERM to the returned child
 * stops the server and waits for it.
 *
 * The leash runs in a process group of its own, so a Ctrl-C at the terminal (SIGINT to the foreground
 * group) reaches only its owner, which stops it when it is done with it: `npm start` stops the sidecar
 * first and its demo Neo4j after, rather than the sidecar meeting a server that is already gone.
 */
import { type ChildProcess, spawn } from 'node:child_process';

const LEASH_SCRIPT = `
"$0" "$@" </dev/null &
server=$!
if [ -n "$LEASH_PID_FILE" ]; then echo "$server" > "$LEASH_PID_FILE"; fi
trap 'kill -TERM "$server" 2>/dev/null' TERM INT
( while read -r _; do :; done; kill -TERM "$server" 2>/dev/null ) <&0 &
wait "$server"
wait "$server" 2>/dev/null
exit 0
`;

export interface LeashOptions {
  env?: NodeJS.ProcessEnv;
  /** Where to write the server's own process id (bash's is the child's). */
  pidFile?: string;
}

/** The child is bash; its stdout is ignored and its stderr (the server's) is piped. */
export function spawnOnLeash(command: string, args: readonly string[], options: LeashOptions = {}): ChildProcess {
  const env = { ...(options.env ?? process.env), ...(options.pidFile ? { LEASH_PID_FILE: options.pidFile } : {}) };
  return spawn('bash', ['-c', LEASH_SCRIPT, command, ...args], {
    env,
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
  });
}
