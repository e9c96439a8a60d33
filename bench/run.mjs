#!/usr/bin/env node
// Runs every bench/*.mjs (or those named with --only a,b) one after another and writes the figures
// to BENCHMARKS.md and bench/results/latest.json; a partial run (--only, or `--scale 0.1` for a quick
// one) writes to bench/results/partial.md and partial.json instead (or to --out), so it never
// replaces the full report with a part of it. `--quick` is `--scale 0.1`: every benchmark in about two
// minutes, to check a change before a full run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ADMIN_DATABASE_URL, REDIS_URL, deferDrops, dropDeferred, dropScanStreams, dropTemplates, phases } from './lib.mjs';

const { values } = parseArgs({ options: { scale: { type: 'string', default: '1' }, quick: { type: 'boolean', default: false }, only: { type: 'string' }, out: { type: 'string' }, build: { type: 'boolean', default: false } } });

// `npm run build` first, unless its outputs are newer than everything it builds from (as make would
// decide; --build forces it): the build takes 5-20 s on this machine, a quick run should not pay it twice.
const root = fileURLToPath(new URL('..', import.meta.url));
const newest = (path) => {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(`${path}/${f}`)));
};
const outputs = ['dist/index.js', 'dist/cli/main.js', 'dist/bundle/main.js'].map((f) => `${root}${f}`);
const inputs = ['src', 'scripts', 'tsconfig.json', 'package.json', 'package-lock.json'].map((f) => `${root}${f}`).filter(existsSync);
const loadAtStart = loadavg()[0];
let built = false;
if (values.build || !outputs.every(existsSync) || Math.max(...inputs.map(newest)) > Math.min(...outputs.map((f) => statSync(f).mtimeMs))) {
  process.stderr.write('bench: npm run build\n');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  built = true;
} else {
  process.stderr.write('bench: dist/ is newer than src/ and scripts/: not rebuilt (--build to force)\n');
}
// --quick: every benchmark at a tenth of its size (written to bench/results/partial.md).
const scale = values.quick ? 0.1 : Number(values.scale);
const full = !values.only && scale === 1;
const dir = fileURLToPath(new URL('.', import.meta.url));
const out = values.out ?? (full ? 'BENCHMARKS.md' : `${dir}results/partial.md`);
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.mjs') && !['run.mjs', 'lib.mjs'].includes(f))
  .map((f) => f.replace(/\.mjs$/, ''))
  .filter((n) => !values.only || values.only.split(',').includes(n))
  .sort();

const reports = [];
const t0 = Date.now();
// The benchmarks' databases are dropped together after the last one (bench/lib.mjs deferDrops).
deferDrops();
for (const name of names) {
  process.stderr.write(`bench ${name} (scale ${scale})...\n`);
  const mod = await import(pathToFileURL(`${dir}${name}.mjs`).href);
  const started = Date.now();
  const loadBefore = loadavg()[0];
  phases.length = 0;
  try {
    const report = await mod.default({ databaseUrl: ADMIN_DATABASE_URL, redisUrl: REDIS_URL, scale });
    reports.push({ name, ...report, seconds: Math.round((Date.now() - started) / 100) / 10, load: [loadBefore, loadavg()[0]].map((x) => Math.round(x * 10) / 10), phases: phases.map((p) => ({ name: p.name, seconds: Math.round(p.ms / 100) / 10 })) });
  } catch (err) {
    reports.push({ name, title: name, error: String(err?.stack ?? err), results: [] });
  }
  process.stderr.write(`bench ${name}: done in ${Math.round((Date.now() - started) / 100) / 10} s\n`);
}
// The template databases the benchmarks cloned their tables from (bench/lib.mjs seededDatabase).
const cleanup = Date.now();
await dropTemplates();
await dropDeferred();
await dropScanStreams(REDIS_URL);
const cleanupSeconds = Math.round((Date.now() - cleanup) / 100) / 10;

// From this process's start: the build too, when it ran.
const runSeconds = Math.round(process.uptime());
const r1 = (x) => Math.round(x * 10) / 10;
const quickLines = !values.quick
  ? []
  : [
      'A quick run (`npm run bench -- --quick`): every benchmark at a tenth of its size (growth: 10,000 vs 100,000 rows /',
      'entries), with fewer rounds where its notes say so. At a tenth of the size the fixed costs (Node\'s start-up,',
      'connecting, planning, each batch\'s round trips) weigh ten times more, so ratios that carry them (migrate as a',
      'process, the repairs against one UPDATE, start-up under load) read higher and the growth ratios lower than in a',
      'full run: a quick run shows which way a change moves the figures; the full run judges the targets.',
      '',
      `Target (issue 16): the whole quick run under 120 s: ${runSeconds} s, ${runSeconds < 120 ? 'met' : '**missed**'} (${built ? 'including `npm run build`' : 'dist/ was up to date: no build'}; the machine's 1-minute load average ${r1(loadAtStart)} at the start, ${r1(loadavg()[0])} at the end, on ${cpus().length} cores: other work shared it, and each section's phases below are this run's own).`,
      '',
    ];
const fmt = (v) => (v == null ? '' : typeof v === 'number' ? v.toLocaleString('en') : String(v));
const lines = [
  '# Benchmarks',
  '',
  `Written by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, scale ${scale}.`,
  'Each figure is measured side by side with its baseline in the same run; the ratio is tool / baseline',
  '(for throughputs, tool / baseline where higher is better). Timings are the best of a few runs, or the',
  'run with the median ratio (each benchmark\'s notes say which), on a shared two-core machine whose speed',
  'drifts: treat single figures as rough and ratios as the signal. Each section gives the load average',
  '(as `uptime` shows it) before and after it ran: other work shared the machine; and the time of each of',
  'its phases (set-up that runs side by side, a stream fill beside a seed, overlaps).',
  '',
  `The whole run took ${runSeconds} s (${built ? 'including `npm run build`, ' : ''}of which ${cleanupSeconds} s dropping the run's databases and streams at its end).`,
  '',
  ...quickLines,
];
for (const r of reports) {
  lines.push(`## ${r.title}`, '');
  if (r.error) {
    lines.push('Failed:', '', '```', r.error, '```', '');
    continue;
  }
  lines.push('| measure | tool | baseline | unit | ratio | target | pass |', '|---|---|---|---|---|---|---|');
  for (const x of r.results) {
    lines.push(`| ${x.name} | ${fmt(x.value)} | ${fmt(x.baseline)} | ${x.unit} | ${fmt(x.ratio)} | ${fmt(x.target)} | ${x.pass == null ? '' : x.pass ? 'yes' : '**no**'} |`);
  }
  lines.push('');
  if (r.notes) lines.push(r.notes, '');
  const ph = r.phases.length ? `: ${r.phases.map((p) => `${p.name} ${p.seconds} s`).join(', ')}` : '';
  lines.push(`(${r.seconds} s including set-up${ph}; the machine's 1-minute load average ${r.load[0]} before, ${r.load[1]} after, on ${cpus().length} cores)`, '');
}
// Issue 16's target for the quick run, in the full report too: a quick run records its length in
// bench/results/quick.json, and a full run shows the last one recorded on this machine.
const QUICK_TARGET_S = 120;
const quickFile = `${dir}results/quick.json`;
if (full) {
  const q = existsSync(quickFile) ? JSON.parse(readFileSync(quickFile, 'utf8')) : null;
  lines.push('## quick run: `npm run bench -- --quick` against two minutes', '');
  if (!q) lines.push('No quick run recorded on this machine (bench/results/quick.json): run `npm run bench -- --quick`.', '');
  else {
    lines.push('| measure | tool | baseline | unit | ratio | target | pass |', '|---|---|---|---|---|---|---|');
    lines.push(`| the whole quick run (every benchmark at a tenth of the size) vs two minutes | ${q.seconds} | ${QUICK_TARGET_S} | s | ${Math.round((q.seconds / QUICK_TARGET_S) * 100) / 100} | 1 | ${q.seconds < QUICK_TARGET_S ? 'yes' : '**no**'} |`, '');
    lines.push(
      `The last quick run recorded on this machine (bench/results/quick.json, ${q.date}), ${q.built ? 'including `npm run build`' : 'without a build (dist/ was up to date)'}; the 1-minute load average ${q.load[0]} at its start, ${q.load[1]} at its end, on ${cpus().length} cores. ` +
        `Its sections: ${q.sections.map((x) => `${x.name} ${x.seconds} s`).join(', ')}. bench/results/partial.md has its figures and each section's phases.`,
      '',
    );
  }
}
mkdirSync(`${dir}results`, { recursive: true });
writeFileSync(out, lines.join('\n'));
if (values.quick && !values.only) {
  writeFileSync(quickFile, JSON.stringify({ date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', seconds: runSeconds, built, load: [r1(loadAtStart), r1(loadavg()[0])], sections: reports.map((r) => ({ name: r.name, seconds: r.seconds ?? null })) }, null, 2));
}
writeFileSync(`${dir}results/${full ? 'latest' : 'partial'}.json`, JSON.stringify({ scale, reports }, null, 2));
const failed = reports.filter((r) => r.error || r.results.some((x) => x.pass === false));
process.stderr.write(`wrote ${out} in ${Math.round((Date.now() - t0) / 1000)} s${failed.length ? `; not met or failed: ${failed.map((r) => r.name).join(', ')}` : ''}\n`);
