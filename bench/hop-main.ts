/**
 * One TCP hop of the benchmark in a process of its own (see support/hop.ts):
 * `hop-main.ts <target port on 127.0.0.1> <one-way delay ms, 0 for a bare pipe>`.
 * Prints {"port"} when it listens; exits on SIGTERM or when its stdin closes.
 */
import { startHop } from './support/hop.ts';

const [targetPort, delayMs] = process.argv.slice(2).map(Number);
if (!(targetPort! > 0) || !(delayMs! >= 0)) {
  console.error('usage: hop-main.ts <target port> <delay ms>');
  process.exit(2);
}
const hop = await startHop({ targetPort: targetPort!, delayMs: delayMs! });
process.stdout.write(`${JSON.stringify({ port: hop.port })}\n`);
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
