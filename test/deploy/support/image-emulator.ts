/**
 * Runs a Dockerfile's stages without a container engine: each stage gets a directory standing in
 * for its root filesystem, WORKDIR/COPY/ENV/RUN are carried out there with the host's Node and npm
 * (the base image's tools), and the final stage's ENTRYPOINT + CMD can then be started.
 *
 * What cannot be emulated is reported instead of faked: RUN steps that install operating-system
 * packages (apt-get) are skipped, and USER is applied only when the test runs as root.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { promisify } from 'node:util';
import {
  dockerIgnoreFilter,
  lastOf,
  type ParsedDockerfile,
  parseDockerfile,
  type Stage,
  stageEnv,
} from './dockerfile.ts';

const execFileAsync = promisify(execFile);

export interface EmulatedStage {
  stage: Stage;
  /** Stands in for the stage's `/`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  /** RUN commands that were not run, with why. */
  skipped: Array<{ command: string; reason: string }>;
}

export type EmulationLog = (line: string) => void;

/** Maps an absolute in-image path into the emulated root. */
export function inRoot(root: string, imagePath: string): string {
  return join(root, posix.normalize(imagePath));
}

async function copyInto(source: string, destination: string, destinationIsDir: boolean): Promise<void> {
  const info = await stat(source);
  if (info.isDirectory()) {
    await mkdir(destination, { recursive: true });
    await cp(source, destination, { recursive: true, force: true });
    return;
  }
  const target = destinationIsDir ? join(destination, basename(source)) : destination;
  await mkdir(destinationIsDir ? destination : join(target, '..'), { recursive: true });
  await cp(source, target, { force: true });
}

export class ImageEmulator {
  readonly dockerfile: ParsedDockerfile;
  readonly stages = new Map<string, EmulatedStage>();
  private readonly ignored: (path: string) => boolean;

  private constructor(
    readonly context: string,
    readonly workRoot: string,
    dockerfileText: string,
    dockerignoreText: string,
    private readonly log: EmulationLog,
  ) {
    this.dockerfile = parseDockerfile(dockerfileText);
    const included = dockerIgnoreFilter(dockerignoreText);
    this.ignored = (path) => !included(path);
  }

  static async create(context: string, workRoot: string, log: EmulationLog = () => {}): Promise<ImageEmulator> {
    const dockerfile = await readFile(join(context, 'Dockerfile'), 'utf8');
    const ignore = existsSync(join(context, '.dockerignore'))
      ? await readFile(join(context, '.dockerignore'), 'utf8')
      : '';
    return new ImageEmulator(context, workRoot, dockerfile, ignore, log);
  }

  /** Paths of the build context that .dockerignore lets into the build. */
  async contextFiles(dir = this.context, prefix = ''): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) out.push(...(await this.contextFiles(join(dir, entry.name), path)));
      else if (!this.ignored(path)) out.push(path);
    }
    return out;
  }

  private async copyFromContext(source: string, destination: string, destinationIsDir: boolean): Promise<void> {
    const files = (await this.contextFiles()).filter((path) => path === source || path.startsWith(`${source}/`));
    if (files.length === 0) throw new Error(`COPY ${source}: not in the build context (or excluded by .dockerignore)`);
    for (const file of files) {
      const relative = file === source ? basename(file) : file.slice(source.length + 1);
      const isSingleFile = file === source;
      const target = isSingleFile
        ? destinationIsDir
          ? join(destination, relative)
          : destination
        : join(destination, relative);
      await copyInto(join(this.context, file), target, false);
    }
  }

  async buildStage(name: string): Promise<EmulatedStage> {
    const stage = this.dockerfile.stages.find((candidate) => candidate.name === name);
    if (!stage) throw new Error(`no stage ${name}`);
    const root = join(this.workRoot, `stage-${name}`);
    await mkdir(root, { recursive: true });
    const emulated: EmulatedStage = { stage, root, workdir: '/', env: {}, skipped: [] };
    for (const instruction of stage.instructions) {
      switch (instruction.kind) {
        case 'WORKDIR':
          emulated.workdir = posix.resolve(emulated.workdir, instruction.path);
          await mkdir(inRoot(root, emulated.workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(emulated.env, instruction.values);
          break;
        case 'COPY': {
          const destination = inRoot(root, posix.resolve(emulated.workdir, instruction.destination));
          const destinationIsDir = instruction.destination.endsWith('/') || instruction.sources.length > 1;
          for (const source of instruction.sources) {
            if (instruction.from) {
              const from = this.stages.get(instruction.from) ?? (await this.buildStage(instruction.from));
              const sourcePath = inRoot(from.root, posix.resolve(from.workdir, source));
              await copyInto(sourcePath, destination, destinationIsDir || (await stat(sourcePath)).isFile() === false);
            } else {
              await this.copyFromContext(posix.normalize(source), destination, destinationIsDir);
            }
          }
          break;
        }
        case 'RUN': {
          if (/\bapt-get\b/.test(instruction.command)) {
            emulated.skipped.push({
              command: instruction.command,
              reason: 'installs operating-system packages into the image; not done on the host',
            });
            this.log(`[${name}] skipped (OS packages): ${instruction.command}`);
            break;
          }
          this.log(`[${name}] RUN ${instruction.command}`);
          try {
            await execFileAsync('sh', ['-c', instruction.command], {
              cwd: inRoot(root, emulated.workdir),
              env: { ...process.env, ...emulated.env },
              maxBuffer: 64 * 1024 * 1024,
            });
          } catch (error) {
            const output = `${(error as { stderr?: string }).stderr ?? ''}`;
            const hint = /package\.json and package-lock\.json .* are in sync|Missing: .* from lock file/.test(output)
              ? '\n`npm ci` refuses package-lock.json as out of sync with package.json (the lines below name the missing entries, e.g. optional platform packages); `docker build` would fail the same way, so fix the lock file.'
              : '';
            throw new Error(`[${name}] RUN ${instruction.command} failed:${hint}\n${output.slice(-3000)}`, {
              cause: error,
            });
          }
          break;
        }
        default:
          break;
      }
    }
    // Image files are world-readable, as the layers of a build are; the runtime user reads but never writes them.
    await chmod(root, 0o755);
    this.stages.set(name, emulated);
    return emulated;
  }

  /** The final stage's ENTRYPOINT + CMD with in-image paths mapped into the emulated root. */
  command(final: EmulatedStage, cmdOverride?: string[]): { argv: string[]; droppedInit?: string } {
    const entrypoint = lastOf(final.stage, 'ENTRYPOINT')?.command ?? [];
    const cmd = cmdOverride ?? lastOf(final.stage, 'CMD')?.command ?? [];
    let argv = [...entrypoint, ...cmd];
    let droppedInit: string | undefined;
    // An init (tini) comes from the image's OS packages; use the host's if it has one.
    if (argv[0] && /\/(tini|dumb-init)$/.test(argv[0]) && !existsSync(argv[0])) {
      droppedInit = argv[0];
      argv = argv.slice(argv[1] === '--' ? 2 : 1);
    }
    argv = argv.map((arg) => (arg.startsWith(`${final.workdir}/`) ? inRoot(final.root, arg) : arg));
    return { argv, ...(droppedInit ? { droppedInit } : {}) };
  }

  /** uid/gid of the stage's USER when numeric, for spawning as that user (only root may). */
  static user(final: EmulatedStage): { uid: number; gid: number } | undefined {
    const user = lastOf(final.stage, 'USER')?.user;
    const match = user ? /^(\d+)(?::(\d+))?$/.exec(user) : null;
    if (!match) return undefined;
    return { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) };
  }

  start(final: EmulatedStage, env: Record<string, string>, cmdOverride?: string[]): ChildProcess & { argv: string[] } {
    const { argv } = this.command(final, cmdOverride);
    const user = ImageEmulator.user(final);
    const asUser = user && process.getuid?.() === 0 ? user : undefined;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: inRoot(final.root, final.workdir),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...stageEnv(final.stage), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asUser ? { uid: asUser.uid, gid: asUser.gid } : {}),
    });
    return Object.assign(child, { argv });
  }
}
