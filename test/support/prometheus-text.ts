/**
 * A strict reader of the Prometheus text exposition format (0.0.4), so tests check that
 * /metrics is well-formed, not merely that it contains a substring.
 */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedExposition {
  types: Map<string, string>;
  samples: ParsedSample[];
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_LINE = new RegExp(`^(${METRIC_NAME})(\\{(.*)\\})? (\\S+)( -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const match = LABEL.exec(rest);
    if (!match) throw new Error(`bad labels in line: ${line}`);
    labels[match[1]!] = match[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    rest = rest.slice(match[0].length);
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  // Prometheus parses floats case-insensitively; prom-client writes `Nan` for an empty event-loop histogram.
  if (/^nan$/i.test(text)) return Number.NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`bad value in line: ${line}`);
  return value;
}

export function parseExposition(text: string, options: { openMetrics?: boolean } = {}): ParsedExposition {
  const types = new Map<string, string>();
  const samples: ParsedSample[] = [];
  const lines = text.split('\n');
  if (options.openMetrics) {
    if (lines.at(-1) !== '' || lines.at(-2) !== '# EOF') throw new Error('OpenMetrics output must end with "# EOF"');
    lines.splice(-2);
  }
  for (const line of lines) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# UNIT ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (!name || !type || !/^(counter|gauge|histogram|summary|untyped|unknown)$/.test(type)) {
        throw new Error(`bad TYPE line: ${line}`);
      }
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`bad sample line: ${line}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[3] ?? '', line), value: parseValue(match[4]!, line) });
  }
  return { types, samples };
}
