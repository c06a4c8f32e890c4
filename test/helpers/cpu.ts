/**
 * CPU time as a sign that an engine is really working on a statement: a positive signal that a test can
 * wait for instead of sleeping "long enough for it to start". Linux (/proc) only, like the suite.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  return (ticksPerSecond ??=
    Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100);
}

/** CPU time (user + system, ms) of this process, every thread included (DuckDB's among them). */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

export interface ProcessCpu {
  pid: number;
  /** CPU time (user + system) used so far, in ms. */
  cpuMs: number;
  /** Its command line, arguments separated by spaces. */
  command: string;
}

/** The live child processes of `parent` (default: this process), with the CPU time each has used. */
export function childProcesses(parent = process.pid): ProcessCpu[] {
  const children: ProcessCpu[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid … utime stime …": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, ppid] = [fields[0], Number(fields[1])];
    if (ppid !== parent || state === 'Z') continue;
    const ticks = Number(fields[11]) + Number(fields[12]);
    let command = '';
    try {
      command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    children.push({ pid: Number(entry), cpuMs: (ticks * 1000) / clockTicks(), command });
  }
  return children;
}
