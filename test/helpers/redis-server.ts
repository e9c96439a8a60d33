// A standalone redis-server of our own on a free loopback port (ACL users, an older version), for
// tests that need a server in a special state. Redis 6.0 comes from Debian bullseye's packages,
// fetched once into ~/.cache/digest-doctor-test (DIGEST_DOCTOR_TEST_CACHE) and run with their libs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface TestServer {
  port: number;
  /** redis://[user:password@]127.0.0.1:port */
  url(user?: string, password?: string): string;
  /** A client as the default user. */
  admin: Redis;
  stop(): Promise<void>;
}


const BULLSEYE = 'http://deb.debian.org/debian/';
/** Debian bullseye's redis 6.0.16 and the libraries it links (file names from dists/bullseye/main/binary-amd64/Packages). */
const REDIS6_DEBS = [
  'pool/main/r/redis/redis-tools_6.0.16-1+deb11u2_amd64.deb',
  'pool/main/j/jemalloc/libjemalloc2_5.2.1-3_amd64.deb',
  'pool/main/libl/liblzf/liblzf1_3.6-3_amd64.deb',
  'pool/main/l/lua-bitop/lua-bitop_1.0.2-5_amd64.deb',
  'pool/main/l/lua-cjson/lua-cjson_2.1.0+dfsg-2.1_amd64.deb',
  'pool/main/l/lua5.1/liblua5.1-0_5.1.5-8.1+b3_amd64.deb',
  'pool/main/o/openssl/libssl1.1_1.1.1w-0+deb11u1_amd64.deb',
];

export interface Binary {
  path: string;
  env: NodeJS.ProcessEnv;
  version: string;
}

/**
 * redis-server 6.0.16 (downloaded and unpacked once; about 3 MB), or undefined with the reason when it
 * cannot be had here (not amd64 Linux, no dpkg-deb, no network).
 */
export async function redis6(): Promise<{ binary?: Binary; reason?: string }> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { reason: 'Debian amd64 packages need linux x64' };
  const cache = join(process.env.DIGEST_DOCTOR_TEST_CACHE ?? join(homedir(), '.cache', 'digest-doctor-test'), 'redis-6.0.16');
  const root = join(cache, 'root');
  const server = join(root, 'usr', 'bin', 'redis-server');
  const env = { ...process.env, LD_LIBRARY_PATH: join(root, 'usr', 'lib', 'x86_64-linux-gnu') };
  try {
    if (!existsSync(server)) {
      mkdirSync(cache, { recursive: true });
      for (const deb of REDIS6_DEBS) {
        const file = join(cache, deb.split('/').pop()!);
        if (!existsSync(file)) {
          const res = await fetch(BULLSEYE + deb, { signal: AbortSignal.timeout(60_000) });
          if (!res.ok) throw new Error(`${BULLSEYE + deb}: HTTP ${res.status}`);
          writeFileSync(`${file}.part`, Buffer.from(await res.arrayBuffer()));
          await run('mv', [`${file}.part`, file]);
        }
        await run('dpkg-deb', ['-x', file, root], { timeout: 60_000 });
      }
      // redis-server is redis-check-rdb under another name (argv[0] picks the mode)
      symlinkSync('redis-check-rdb', server);
    }
    const { stdout } = await run(server, ['--version'], { env, timeout: 10_000 });
    const m = /v=(\d+\.\d+\.\d+)/.exec(stdout);
    return { binary: { path: server, env, version: m?.[1] ?? '?' } };
  } catch (e) {
    return { reason: `cannot get redis-server 6.0.16: ${(e as Error).message}` };
  }
}

/** The redis-server on PATH (the version the shared server runs). */
export const SYSTEM_REDIS: Binary = { path: 'redis-server', env: process.env, version: 'system' };

/**
 * Starts `binary` on a free port with `acl` lines (ACL SETUSER arguments, one user each) and returns
 * it with an admin client; stop() kills it and removes its directory.
 */
export async function startRedisServer(opts: { binary?: Binary; acl?: string[][] } = {}): Promise<TestServer> {
  const binary = opts.binary ?? SYSTEM_REDIS;
  const dir = mkdtempSync(join(tmpdir(), 'dd-redis-'));
  let child: ChildProcess | undefined;
  let admin: Redis | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    child = spawn(binary.path, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no'], {
      env: binary.env,
      stdio: 'ignore',
    });
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    const until = Date.now() + 10_000;
    let up = false;
    while (Date.now() < until && child.exitCode === null) {
      try {
        await c.connect();
        up = (await c.ping()) === 'PONG';
        if (up) break;
      } catch {
        c.disconnect();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!up) {
      c.disconnect();
      child.kill('SIGKILL');
      continue;
    }
    admin = c;
    for (const line of opts.acl ?? []) await admin.call('ACL', 'SETUSER', ...line);
    const started = child;
    return {
      port,
      url: (user, password) => `redis://${user ? `${encodeURIComponent(user)}:${encodeURIComponent(password ?? '')}@` : ''}127.0.0.1:${port}`,
      admin,
      async stop() {
        admin?.disconnect();
        started.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`could not start ${binary.path}`);
}
