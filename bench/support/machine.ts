/**
 * What the figures were measured on, and how busy the machine was meanwhile. The machine may be
 * shared (other test runs, other benchmarks), so every comparison reports the load beside its
 * figures: the load average, the machine's CPU use, and how much of it was the benchmark's own
 * processes (this process, Neo4j, the sidecar, the Python client) rather than someone else's.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  neo4jVersion?: string;
  python?: string;
  go?: string;
}

export function describeMachine(
  extra: { neo4jVersion?: string; python?: string; go?: string } = {},
): MachineDescription {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${process.platform} ${release()}`,
    node: process.version,
    ...extra,
  };
}

export function machineLine(machine: MachineDescription): string {
  const parts = [
    `${machine.cores} x ${machine.cpuModel}`,
    `${machine.memoryGiB} GiB`,
    machine.kernel,
    `Node ${machine.node}`,
    ...(machine.neo4jVersion ? [`Neo4j ${machine.neo4jVersion} Community (same machine, loopback)`] : []),
    ...(machine.python ? [machine.python] : []),
    ...(machine.go ? [machine.go] : []),
  ];
  return parts.join('; ');
}

/** Clock ticks per second of /proc CPU times; 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

interface CpuTimes {
  busyTicks: number;
  totalTicks: number;
}

function machineCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busyTicks: total - idle, totalTicks: total };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far, or undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in bytes, or undefined when it is gone. */
export function processResidentBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Local ports of a process's TCP connections to `remotePort` (any established or closing socket it holds
 * a descriptor of): which of the connections a server lists are that process's. Linux /proc only; an
 * empty set when the process is gone.
 */
export function processTcpPortsTo(pid: number, remotePort: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const [local, remote, inode] = [fields[1], fields[2], fields[9]];
      if (!local || !remote || !inode || !inodes.has(inode)) continue;
      if (Number.parseInt(remote.split(':')[1] ?? '', 16) !== remotePort) continue;
      ports.add(Number.parseInt(local.split(':')[1] ?? '', 16));
    }
  }
  return ports;
}

/** Processes whose command line contains `needle` (e.g. a Neo4j instance's home directory). */
export function findPids(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\u0000', ' ');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export interface LoadDuringRun {
  seconds: number;
  loadAverage1mStart: number;
  loadAverage1mEnd: number;
  /** Busy share of all cores, 0..100. */
  machineCpuPercent: number;
  /** Of which the benchmark's own processes, 0..100 of all cores. */
  benchCpuPercent: number;
  /** The rest: other people's work on a shared machine. */
  otherCpuPercent: number;
}

/** Measures the machine's load between start() and stop(). */
export class LoadMeter {
  private readonly ownPids = new Set<number>();
  private started: { at: number; load: number; cpu: CpuTimes | undefined; own: number } | undefined;

  /** Processes whose CPU counts as the benchmark's own (this process is always included). */
  addOwnProcess(pid: number | undefined): void {
    if (pid !== undefined) this.ownPids.add(pid);
  }

  private ownCpuSeconds(): number {
    let total = 0;
    for (const pid of new Set([process.pid, ...this.ownPids])) total += processCpuSeconds(pid) ?? 0;
    return total;
  }

  start(): void {
    this.started = { at: performance.now(), load: loadavg()[0]!, cpu: machineCpuTimes(), own: this.ownCpuSeconds() };
  }

  stop(): LoadDuringRun {
    const started = this.started;
    if (!started) throw new Error('LoadMeter.stop() before start()');
    const seconds = (performance.now() - started.at) / 1000;
    const cpu = machineCpuTimes();
    const cores = cpus().length;
    let machineCpuPercent = Number.NaN;
    if (cpu && started.cpu && cpu.totalTicks > started.cpu.totalTicks) {
      machineCpuPercent = (100 * (cpu.busyTicks - started.cpu.busyTicks)) / (cpu.totalTicks - started.cpu.totalTicks);
    }
    const benchCpuPercent = seconds > 0 ? (100 * (this.ownCpuSeconds() - started.own)) / (seconds * cores) : 0;
    return {
      seconds,
      loadAverage1mStart: started.load,
      loadAverage1mEnd: loadavg()[0]!,
      machineCpuPercent,
      benchCpuPercent: Math.min(benchCpuPercent, machineCpuPercent || benchCpuPercent),
      otherCpuPercent: Math.max(0, machineCpuPercent - benchCpuPercent),
    };
  }
}

export function loadLine(load: LoadDuringRun): string {
  return (
    `load average ${load.loadAverage1mStart.toFixed(1)} → ${load.loadAverage1mEnd.toFixed(1)}; ` +
    `CPU busy ${load.machineCpuPercent.toFixed(0)}% of all cores, of which ${load.otherCpuPercent.toFixed(0)}% ` +
    `was not the benchmark's (over ${load.seconds.toFixed(0)} s)`
  );
}
