// Start-up, which every invocation pays: `--version`, `--help` and `inspect` against an empty table
// (the time until its first query reaches Postgres), each against `node -e 0`, side by side. The
// shipped entry (bin/digest-doctor.js, which loads the esbuild bundle in dist/bundle/) and the tsc
// output it replaces (dist/cli/main.js, loaded directly) are both measured, so the lever shows.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createBenchDatabase, createServiceSchema, median, phase, result } from './lib.mjs';

const BIN = fileURLToPath(new URL('../bin/digest-doctor.js', import.meta.url));
const BUNDLE = new URL('../dist/bundle/main.js', import.meta.url);
// The tsc output loaded directly, as bin/ did before the bundle.
const UNBUNDLED = `${tmpdir()}/dd-bench-unbundled-${process.pid}.mjs`;

/**
 * A TCP proxy in front of Postgres that notes when the client sends its first message after the
 * startup packet (with trust authentication, the first query: pg sends no SSLRequest without sslmode).
 */
async function firstQueryProxy(target) {
  let firstQueryAt = null;
  const server = net.createServer((c) => {
    const up = net.connect(target.port, target.host);
    let seen = 0;
    let startupLength = null;
    c.on('data', (chunk) => {
      if (startupLength === null && seen + chunk.length >= 4) startupLength = Buffer.concat([Buffer.alloc(0), chunk]).readInt32BE(0);
      seen += chunk.length;
      if (firstQueryAt === null && startupLength !== null && seen > startupLength) firstQueryAt = process.hrtime.bigint();
    });
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    reset() {
      firstQueryAt = null;
    },
    firstQueryAt: () => firstQueryAt,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Runs argv to its exit; wall ms from spawn, and ms until `mark()` (if given) returned a time. */
function timed(argv, env, mark) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const killer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(killer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const at = mark?.();
      if (code !== 0 && code !== 1) reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      else resolve({ ms, firstMs: at ? Number(at - t0) / 1e6 : null });
    });
  });
}

export default async function run({ scale, redisUrl }) {
  if (!existsSync(BUNDLE)) throw new Error('no dist/bundle/main.js: run npm run build');
  writeFileSync(UNBUNDLED, `import { main } from ${JSON.stringify(new URL('../dist/cli/main.js', import.meta.url).href)};\nmain(process.argv);\n`);
  const rounds = scale < 1 ? 3 : 15;
  // A quick run (scale < 1) leaves out the unbundled tsc output: rows without a target, there to show the lever.
  const withTsc = scale >= 1;
  const bench = await createBenchDatabase('startup');
  const admin = new pg.Client({ connectionString: bench.url });
  await admin.connect();
  const u = new URL(bench.url);
  const proxy = await firstQueryProxy({ host: u.hostname, port: Number(u.port || 5432) });
  try {
    await createServiceSchema(admin, 'public');
    const viaProxy = new URL(bench.url);
    viaProxy.port = String(proxy.port);
    const env = { ...process.env, NO_COLOR: '1' };
    for (const k of ['DATABASE_URL', 'REDIS_URL', 'DEBUG', 'NODE_OPTIONS']) delete env[k];
    // Redis under a key prefix of its own (an empty stream): the whole command, as the on-call runs it.
    const inspectArgs = ['--database-url', viaProxy.toString(), '--redis-url', redisUrl, '--key-prefix', `ddbench:${process.pid}:`, 'inspect'];
    const node = process.execPath;
    const subjects = {
      node: [node, '-e', '0'],
      version: [node, BIN, '--version'],
      help: [node, BIN, '--help'],
      inspect: [node, BIN, ...inspectArgs],
      ...(withTsc && {
        versionTsc: [node, UNBUNDLED, '--version'],
        helpTsc: [node, UNBUNDLED, '--help'],
        inspectTsc: [node, UNBUNDLED, ...inspectArgs],
      }),
    };
    // warm the file cache once
    await phase('warm-up', async () => {
      for (const argv of Object.values(subjects)) await timed(argv, env, proxy.firstQueryAt);
    });
    // Each round runs node -e 0 then every subject, in a rotating order; every ratio is taken within
    // its round (against that round's node -e 0), and the figure is the median ratio over the rounds.
    const per = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
    const keys = Object.keys(subjects).filter((k) => k !== 'node');
    for (let r = 0; r < rounds; r++) await phase('rounds', async () => {
      const base = await timed(subjects.node, env);
      const order = keys.map((_, i) => keys[(i + r) % keys.length]);
      for (const k of order) {
        proxy.reset();
        per[k].push({ ...(await timed(subjects[k], env, proxy.firstQueryAt)), base: base.ms });
      }
      per.node.push({ ms: base.ms, base: base.ms });
    });
    const row = (name, k, target, field = 'ms') => {
      const list = per[k].map((x) => ({ v: x[field], b: x.base }));
      const m = median(list, (x) => x.v / x.b);
      return result(name, m.v, 'ms', m.b, target);
    };
    const results = [
      row('--version (bin/, bundled) vs node -e 0', 'version', 3),
      row('--help (bin/, bundled) vs node -e 0', 'help', 2),
      row('inspect on an empty table (bin/, bundled): spawn to its first query vs node -e 0', 'inspect', 2, 'firstMs'),
      row('inspect on an empty table (bin/, bundled): the whole process vs node -e 0', 'inspect', null),
      ...(withTsc
        ? [
            row('--version, tsc output unbundled vs node -e 0', 'versionTsc', null),
            row('--help, tsc output unbundled vs node -e 0', 'helpTsc', null),
            row('inspect first query, tsc output unbundled vs node -e 0', 'inspectTsc', null, 'firstMs'),
          ]
        : []),
    ];
    const all = (k, field = 'ms') => per[k].map((x) => (x[field] / x.base).toFixed(2)).join(' ');
    return {
      title: 'start-up: --version, --help, inspect on an empty table, each against node -e 0',
      results,
      notes:
        `${rounds} rounds; each runs \`node -e 0\` and then every subject once, in a rotating order, and takes each subject's ratio against that round's \`node -e 0\`; the row is the round with the median ratio (so the machine's load, which moves both, cancels out as far as it can). ` +
        'bin/digest-doctor.js loads the esbuild bundle (dist/bundle/, built by `npm run build`: one entry plus a chunk per command, loaded on demand) when it is at least as new as the tsc output; the "tsc output unbundled" rows import dist/cli/main.js directly, as bin/ did before. ' +
        "The first query is the first message the process sends after Postgres's startup packet, seen by a TCP proxy in front of the server (the time includes connecting; Redis is given, under a key prefix with no stream). " +
        "Where the time goes (CPU profiles, node --cpu-prof, and process.cpuUsage() at the first connect): `--help` loads the entry chunk only: commander and the command listing serialised at build time (src/cli/commands/summaries.ts), no command module, no zod, no driver. Before inspect's first query the process spends about as much CPU again as Node's own bootstrap: the ES module loader resolving, reading and compiling the ~470 KB of JavaScript the command needs (zod 137 KB once tree-shaken, pg 116 KB, commander 54 KB, cli-table3 and chalk, the command's operations), building its zod schemas (ops/inspect, core/event, core/finding: 30-45 ms of CPU, about a third of what comes after Node's bootstrap; building them only when used, e.g. for --json, is the lever left), and then the connection (TCP, the Postgres backend's start-up, trust authentication) before the query is sent. Node 20 has no compile cache for ES modules (module.enableCompileCache is Node 22.1+), so every run compiles that code afresh; that, with Node's bootstrap, is the floor left. `--version` loads the entry chunk only. " +
        `All ratios: --version ${all('version')}; --help ${all('help')}; inspect first query ${all('inspect', 'firstMs')}` +
        (withTsc ? `; unbundled --help ${all('helpTsc')}; unbundled inspect first query ${all('inspectTsc', 'firstMs')}.` : '. (A quick run: 3 rounds instead of 15, and without the unbundled rows.)'),
    };
  } finally {
    await proxy.close();
    await admin.end();
    await bench.drop();
  }
}
