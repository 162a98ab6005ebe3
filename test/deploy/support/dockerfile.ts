/**
 * Reads a Dockerfile into stages of instructions, so tests can run the image's own build and start
 * steps without a container engine. Supports what our Dockerfile uses: parser directives and
 * comments, line continuations, ARG, FROM ... AS, WORKDIR, COPY [--from] [--chown], RUN (shell
 * form), ENV, USER, EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD (exec form). Anything else is an error,
 * so a new instruction cannot be silently skipped by the emulation.
 */

export type Instruction =
  | { kind: 'WORKDIR'; path: string }
  | { kind: 'COPY'; from?: string; chown?: string; sources: string[]; destination: string }
  | { kind: 'RUN'; command: string }
  | { kind: 'ENV'; values: Record<string, string> }
  | { kind: 'ARG'; name: string; defaultValue?: string }
  | { kind: 'USER'; user: string }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'HEALTHCHECK'; options: Record<string, string>; command: string[] }
  | { kind: 'ENTRYPOINT'; command: string[] }
  | { kind: 'CMD'; command: string[] };

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export interface ParsedDockerfile {
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** Joins continuation lines and drops comments, as Docker's parser does before reading instructions. */
export function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === '')) continue;
    if (trimmed.endsWith('\\')) {
      pending += `${trimmed.slice(0, -1).trimEnd()} `;
      continue;
    }
    lines.push((pending + trimmed).trim());
    pending = '';
  }
  if (pending.trim()) lines.push(pending.trim());
  return lines.filter((line) => line !== '');
}

function execForm(text: string, instruction: string): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`${instruction} must use the exec form (a JSON array of strings): ${text}`);
  }
  return parsed;
}

/** `a=b c="d e"` pairs of ENV. */
function envPairs(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const pattern = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
  let consumed = '';
  for (const match of text.matchAll(pattern)) {
    const raw = match[2] ?? '';
    values[match[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    consumed += match[0];
  }
  if (consumed.replace(/\s/g, '').length !== text.replace(/\s/g, '').length) {
    throw new Error(`ENV must use key=value pairs: ${text}`);
  }
  return values;
}

function substituteArgs(text: string, args: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced, bare) => {
    const name = (braced ?? bare) as string;
    return name in args ? args[name]! : whole;
  });
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logicalLines(text)) {
    const space = line.search(/\s/);
    const keyword = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const rest = space < 0 ? '' : line.slice(space + 1).trim();
    const stage = stages.at(-1);
    if (keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(substituteArgs(rest, globalArgs));
      if (!match) throw new Error(`cannot read FROM ${rest}`);
      stages.push({ image: match[1]!, name: match[2] ?? String(stages.length), instructions: [] });
      continue;
    }
    if (keyword === 'ARG') {
      const [name = '', defaultValue] = rest.split('=', 2);
      if (stage)
        stage.instructions.push({ kind: 'ARG', name, ...(defaultValue === undefined ? {} : { defaultValue }) });
      else globalArgs[name] = defaultValue ?? '';
      continue;
    }
    if (!stage) throw new Error(`${keyword} before the first FROM`);
    switch (keyword) {
      case 'WORKDIR':
        stage.instructions.push({ kind: 'WORKDIR', path: rest });
        break;
      case 'COPY': {
        const words = rest.split(/\s+/);
        const flags = words.filter((word) => word.startsWith('--'));
        const paths = words.filter((word) => !word.startsWith('--'));
        const flag = (name: string) => flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);
        const unknown = flags.filter((f) => !/^--(from|chown)=/.test(f));
        if (unknown.length > 0 || paths.length < 2) throw new Error(`unsupported COPY ${rest}`);
        const from = flag('from');
        const chown = flag('chown');
        stage.instructions.push({
          kind: 'COPY',
          sources: paths.slice(0, -1),
          destination: paths.at(-1)!,
          ...(from ? { from } : {}),
          ...(chown ? { chown } : {}),
        });
        break;
      }
      case 'RUN':
        if (rest.startsWith('[')) throw new Error(`RUN must use the shell form: ${rest}`);
        stage.instructions.push({ kind: 'RUN', command: rest });
        break;
      case 'ENV':
        stage.instructions.push({ kind: 'ENV', values: envPairs(rest) });
        break;
      case 'USER':
        stage.instructions.push({ kind: 'USER', user: rest });
        break;
      case 'EXPOSE':
        stage.instructions.push({ kind: 'EXPOSE', ports: rest.split(/\s+/) });
        break;
      case 'HEALTHCHECK': {
        const cmdAt = rest.search(/\bCMD\s+\[/);
        if (cmdAt < 0) throw new Error(`HEALTHCHECK must be "[options] CMD [exec form]": ${rest}`);
        const options = Object.fromEntries(
          [...rest.slice(0, cmdAt).matchAll(/--([a-z-]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
        );
        stage.instructions.push({
          kind: 'HEALTHCHECK',
          options,
          command: execForm(rest.slice(cmdAt + 3).trim(), 'HEALTHCHECK'),
        });
        break;
      }
      case 'ENTRYPOINT':
        stage.instructions.push({ kind: 'ENTRYPOINT', command: execForm(rest, 'ENTRYPOINT') });
        break;
      case 'CMD':
        stage.instructions.push({ kind: 'CMD', command: execForm(rest, 'CMD') });
        break;
      default:
        throw new Error(`the Dockerfile emulation does not know ${keyword}; extend test/deploy/support/dockerfile.ts`);
    }
  }
  return { globalArgs, stages };
}

/** The last value an instruction kind took in a stage (ENTRYPOINT, CMD, USER, HEALTHCHECK). */
export function lastOf<K extends Instruction['kind']>(
  stage: Stage,
  kind: K,
): Extract<Instruction, { kind: K }> | undefined {
  return stage.instructions.filter((i): i is Extract<Instruction, { kind: K }> => i.kind === kind).at(-1);
}

/** Merged ENV of a stage. */
export function stageEnv(stage: Stage): Record<string, string> {
  return Object.assign(
    {},
    ...stage.instructions.filter((i) => i.kind === 'ENV').map((i) => (i as { values: Record<string, string> }).values),
  );
}

/**
 * .dockerignore matching: patterns in order, the last that matches a path or one of its parent
 * directories decides, `!` re-includes; `*` stays within one path segment, `**` spans any.
 */
export function dockerIgnoreFilter(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
      const source = pattern
        .split('/')
        .map((segment) =>
          segment === '**'
            ? '.*'
            : segment
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\/\.\*$/, '(?:/.*)?')
        .replace(/^\.\*\//, '(?:.*/)?');
      return { negated, regex: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let included = true;
    for (const rule of rules) {
      if (prefixes.some((prefix) => rule.regex.test(prefix))) included = rule.negated;
    }
    return included;
  };
}
