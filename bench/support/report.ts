/** How benchmark sections are printed (markdown) and kept (JSON). */
import type { LoadDuringRun } from './machine.ts';
import { loadLine } from './machine.ts';

export interface Table {
  /** Shown above the table. */
  caption?: string;
  headers: string[];
  /** 'r' right-aligns a column (numbers). */
  align?: Array<'l' | 'r'>;
  rows: string[][];
}

/** One verdict against a target of the issue; targets are reported, never asserted. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

export interface Section {
  id: string;
  title: string;
  /** What was measured and how, in a sentence or two. */
  method: string;
  tables: Table[];
  load?: LoadDuringRun[];
  targets?: TargetCheck[];
  notes?: string[];
  /** Raw figures for the JSON file. */
  data: unknown;
}

export function renderTable(table: Table): string {
  const align = table.align ?? table.headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const lines = [
    `| ${table.headers.join(' | ')} |`,
    `| ${align.map((side) => (side === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.join(' | ')} |`),
  ];
  return `${table.caption ? `${table.caption}\n\n` : ''}${lines.join('\n')}`;
}

export function renderSection(section: Section): string {
  const parts = [`### ${section.title}`, section.method];
  for (const table of section.tables) parts.push(renderTable(table));
  if (section.targets && section.targets.length > 0) {
    parts.push(
      section.targets
        .map((check) => `- ${check.met ? 'met' : '**not met**'}: ${check.target} (measured ${check.measured})`)
        .join('\n'),
    );
  }
  if (section.load && section.load.length > 0) {
    parts.push(`Machine load while measuring: ${section.load.map(loadLine).join('; ')}.`);
  }
  for (const note of section.notes ?? []) parts.push(`_${note}_`);
  return parts.join('\n\n');
}

/** Merges the load of several comparisons into one figure for a section (worst case of each number). */
export function combinedLoad(loads: readonly LoadDuringRun[]): LoadDuringRun[] {
  if (loads.length === 0) return [];
  const seconds = loads.reduce((sum, load) => sum + load.seconds, 0);
  const weighted = (pick: (load: LoadDuringRun) => number) =>
    loads.reduce((sum, load) => sum + pick(load) * load.seconds, 0) / seconds;
  return [
    {
      seconds,
      loadAverage1mStart: loads[0]!.loadAverage1mStart,
      loadAverage1mEnd: loads.at(-1)!.loadAverage1mEnd,
      machineCpuPercent: weighted((load) => load.machineCpuPercent),
      benchCpuPercent: weighted((load) => load.benchCpuPercent),
      otherCpuPercent: weighted((load) => load.otherCpuPercent),
    },
  ];
}

export const format = {
  qps: (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a'),
  micros: (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a'),
  millis: (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a'),
  percent: (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : 'n/a'),
  signedMicros: (value: number) =>
    Number.isFinite(value) ? `${value >= 0 ? '+' : '−'}${Math.abs(Math.round(value)).toLocaleString('en-US')}` : 'n/a',
};
