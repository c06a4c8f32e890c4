/**
 * Summarizes a V8 CPU profile (from `npm run bench -- --cpu-prof DIR`, i.e. node --cpu-prof): the
 * functions with the most self time, and self time per package or source folder.
 * Run: npx tsx bench/profile-top.ts <file.cpuprofile> [top N] [from s] [to s]
 *
 * `from`/`to` keep only the samples taken in that window (seconds since the profile started), e.g.
 * the seconds of a load test, leaving out start-up and idle time. Each second's busy share is
 * printed first to find the window.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on('error', () => process.exit(0));

const [file, topArg, fromArg, toArg] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: profile-top.ts <file.cpuprofile> [top N] [from s] [to s]');
const top = Number(topArg ?? 30);
const from = Number(fromArg ?? 0) * 1e6;
const to = toArg === undefined ? Infinity : Number(toArg) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfMicros = new Map<number, number>();
const perSecond = new Map<number, { busy: number; all: number }>();
let at = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  at += delta;
  const second = Math.floor(at / 1e6);
  const bucket = perSecond.get(second) ?? { busy: 0, all: 0 };
  bucket.all += delta;
  if (byId.get(id)?.callFrame.functionName !== '(idle)') bucket.busy += delta;
  perSecond.set(second, bucket);
  if (at >= from && at < to) selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
});
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);

/** node_modules/<package>, src/<folder>, node:<internal>, or the frame's own name. */
function area(url: string, name: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const src = /\/(src|bench)\/([^/]+)\//.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  return url === '' ? `(${name || 'native'})` : url;
}

const fnTotals = new Map<string, number>();
const areaTotals = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const short = url.replace(/^.*\/(node_modules|src|bench)\//, '$1/');
  const key = `${functionName || '(anonymous)'}  ${short}:${lineNumber + 1}`;
  fnTotals.set(key, (fnTotals.get(key) ?? 0) + micros);
  const a = area(url, functionName);
  areaTotals.set(a, (areaTotals.get(a) ?? 0) + micros);
}

const print = (title: string, totals: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, micros] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const share = ((micros / total) * 100).toFixed(1).padStart(5);
    console.log(`${share}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  }
};
console.log(
  'busy share per second: ' +
    [...perSecond].map(([s, { busy, all }]) => `${s}:${Math.round((busy / all) * 100)}%`).join(' '),
);
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled in the window`);
print('self time by function', fnTotals);
print('self time by area', areaTotals);
