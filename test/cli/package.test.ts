// The package as npm ships it: `npm pack` of this checkout must hold every Lua and SQL file the code
// loads (and no src/), and the packed tarball, installed into a temp prefix, must run and load its
// Lua scripts from inside itself. A dist/ that reached back into the checkout (src/redis/lua) worked
// in the repository and broke only once installed; this test installs.
//
// No registry: the tarball is unpacked where `npm install` would put it (<prefix>/node_modules/
// digest-doctor, bin linked in <prefix>/node_modules/.bin) and its declared dependencies are linked
// from this checkout's node_modules, so only the package's own files come from the tarball.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCRIPTS } from '../../src/redis/scripts.js';
import { createTestRedis, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string>; dependencies: Record<string, string> };

/** Every file below `dir` (relative to ROOT), as package paths `dir/...`. */
function filesUnder(dir: string): string[] {
  return (readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; name: string; parentPath: string }>)
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(ROOT.length));
}

describe('the packed package', () => {
  let tmp: string;
  let packed: string[];
  let installed: string;
  let bin: string;
  let redis: TestRedis;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'dd-pack-'));
    // --ignore-scripts: `prepare` would build; `npm test` has built dist/ already
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT, timeout: 30_000 });
    const [report] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packed = report!.files.map((f) => f.path);
    const prefix = join(tmp, 'prefix');
    installed = join(prefix, 'node_modules', PKG.name);
    mkdirSync(installed, { recursive: true });
    // npm tarballs hold the package under package/
    await run('tar', ['-xzf', join(tmp, report!.filename), '-C', installed, '--strip-components=1'], { timeout: 30_000 });
    for (const dep of Object.keys(PKG.dependencies)) {
      mkdirSync(join(prefix, 'node_modules', dep, '..'), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', dep), join(prefix, 'node_modules', dep), 'dir');
    }
    // the link npm makes for `bin`, to the file inside the installed package
    bin = join(prefix, 'node_modules', '.bin', 'digest-doctor');
    mkdirSync(join(bin, '..'));
    symlinkSync(join('..', PKG.name, PKG.bin['digest-doctor']!), bin);
    redis = await createTestRedis();
  }, 60_000);

  afterAll(async () => {
    await redis?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships every Lua script the code registers and every SQL file, at the paths the code reads, and no sources', () => {
    const scripts = Object.values(SCRIPTS).map((f) => `lua/${f}.lua`);
    expect(scripts.length).toBeGreaterThan(0);
    for (const f of scripts) expect(packed, f).toContain(f);
    const sqlFiles = filesUnder('sql');
    expect(sqlFiles).toContain('sql/queries/db_now.sql');
    for (const f of [...filesUnder('lua'), ...sqlFiles]) expect(packed, f).toContain(f);
    expect(packed.filter((p) => p.startsWith('src/'))).toEqual([]);
  });

  it('installed, runs `digest-doctor --version` from its bin link', async () => {
    const { stdout } = await run(bin, ['--version'], { cwd: tmp, timeout: 30_000 });
    expect(stdout.trim()).toBe(PKG.version);
  });

  it('installed, loads its Lua scripts from inside itself: a lock taken and released through the release script', async () => {
    // imported by name from the prefix: resolves through the installed package.json's exports
    const program = `
      import { acquireLock, connectRedis, releaseLock } from ${JSON.stringify(PKG.name)};
      const client = await connectRedis({ url: process.env.DD_URL, keyPrefix: process.env.DD_PREFIX });
      const lock = await acquireLock(client, 'package-test-lock', 10000);
      const first = await releaseLock(client, lock);
      const second = await releaseLock(client, lock);
      client.disconnect();
      process.stdout.write(JSON.stringify({ took: lock !== null, first: first.outcome, second: second.outcome }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', program], {
      cwd: join(installed, '..', '..'),
      env: { ...process.env, DD_URL: redis.url, DD_PREFIX: redis.prefix },
      timeout: 30_000,
    });
    // taken; released by its owner (the script ran); a second release finds it gone
    expect(JSON.parse(stdout)).toEqual({ took: true, first: 'ok', second: 'not-held' });
    expect(await redis.client.exists(redis.key('package-test-lock'))).toBe(0);
  });
});
