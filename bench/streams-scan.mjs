// `streams --scan` over a 1,000,000-entry stream vs a raw paged XRANGE loop (no parsing) over the
// same stream, side by side. Each side runs in its own child process so its peak RSS is its own.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { DIGEST_STREAM } from '../dist/core/contract.js';
import { phase, scanStreamPrefix } from './lib.mjs';

const run = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);

async function child(mode, redisUrl, prefix) {
  const { stdout } = await run(process.execPath, [SELF, `--child-${mode}`, redisUrl, prefix], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout);
}

export default async function run_({ redisUrl, scale }) {
  const n = Math.round(1_000_000 * scale);
  // The run's stream of n events (bench/lib.mjs: filled once, growth's scan reads it too); read only.
  const prefix = await scanStreamPrefix(redisUrl, n);
  // alternate the two, twice (once in a quick run): the fastest run of each is the least disturbed by other work
  const alternations = scale < 1 ? 1 : 2;
  const runs = { raw: [], scan: [] };
  await phase('rounds', async () => {
    for (let i = 0; i < alternations; i++) for (const mode of ['raw', 'scan']) runs[mode].push(await child(mode, redisUrl, prefix));
  });
  const fastest = (xs) => xs.reduce((a, b) => (b.ms < a.ms ? b : a));
  const raw = { ...fastest(runs.raw), maxRssKb: Math.max(...runs.raw.map((r) => r.maxRssKb)) };
  const tool = { ...fastest(runs.scan), maxRssKb: Math.max(...runs.scan.map((r) => r.maxRssKb)) };
  if (tool.entries !== n || raw.entries !== n) throw new Error(`read ${tool.entries} / ${raw.entries} entries, expected ${n}`);
  const expectedDups = Math.floor(n / 1000);
  if (tool.duplicates !== expectedDups) throw new Error(`scan found ${tool.duplicates} duplicated history_ids, expected ${expectedDups}`);
  const toolRate = n / (tool.ms / 1000);
  const rawRate = n / (raw.ms / 1000);
  const mb = (kb) => Math.round(kb / 10.24) / 100;
  return {
    title: `streams --scan over ${n.toLocaleString('en')} entries (${expectedDups} duplicated history_ids)`,
    results: [
      { name: 'scan throughput vs raw paged XRANGE (no parsing)', value: Math.round(toolRate), unit: 'entries/s', baseline: Math.round(rawRate), ratio: Math.round((toolRate / rawRate) * 100) / 100, target: '>= 200,000 entries/s', pass: toolRate >= 200_000 },
      { name: 'scan peak RSS vs raw paged XRANGE', value: mb(tool.maxRssKb), unit: 'MB', baseline: mb(raw.maxRssKb), ratio: Math.round((tool.maxRssKb / raw.maxRssKb) * 100) / 100, target: '< 200 MB', pass: tool.maxRssKb / 1024 < 200 },
    ],
    notes:
      `The scan is the library op the CLI runs (scanStream: XRANGE pages of 250 on a connection of its own opened with the client's settings, the next page requested before the current one is checked; replies read as bytes, each event checked in place against the event schema's rules when it has the plain shape the service writes, through JSON.parse + the schema otherwise; compact per-history_id state in typed arrays). The baseline is a bare ioredis loop of XRANGE pages of 1000 over the same stream, decoding the replies and nothing else. Each runs in its own child process, alternately, ${alternations === 2 ? 'twice' : 'once (a quick run; a full one alternates twice)'}: throughput is the faster run, peak RSS the larger (process.resourceUsage().maxRSS of the child).`,
  };
}

if (process.argv[2]?.startsWith('--child-')) {
  const [, , mode, redisUrl, prefix] = process.argv;
  let out;
  let started;
  if (mode === '--child-raw') {
    const r = new Redis(redisUrl, { keyPrefix: prefix });
    await r.ping();
    started = performance.now();
    let n = 0;
    let start = '-';
    for (;;) {
      const page = await r.xrange(DIGEST_STREAM, start, '+', 'COUNT', 1000);
      n += page.length;
      if (page.length < 1000) break;
      start = `(${page[page.length - 1][0]}`;
    }
    r.disconnect();
    out = { entries: n };
  } else {
    const { connectRedis, closeRedis } = await import('../dist/redis/connect.js');
    const { scanStream, DEFAULT_SCAN_OPTIONS } = await import('../dist/ops/streams.js');
    const r = await connectRedis({ url: redisUrl, keyPrefix: prefix });
    started = performance.now();
    const res = await scanStream(r, undefined, DIGEST_STREAM, true, DEFAULT_SCAN_OPTIONS);
    await closeRedis(r);
    out = { entries: res.entries, duplicates: res.duplicates.historyIds, malformed: res.malformed.count };
  }
  out.ms = performance.now() - started;
  out.maxRssKb = process.resourceUsage().maxRSS;
  process.stdout.write(JSON.stringify(out));
}
