// A redis-server of the test's own on a free loopback port (the OS picks it), for a server in a
// special state: ACL users the shared server must not get. The caller stops it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface OwnRedis {
  port: number;
  /** A URL for `user` (default: the admin, the `default` user with the password). */
  url(user?: { name: string; password: string }): string;
  /** A raw client for the admin. */
  admin: Redis;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Starts redis-server (no persistence) with `adminPassword` on the default user; waits up to 10 s for it. */
export async function startOwnRedis(adminPassword = 'adminpw'): Promise<OwnRedis> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', adminPassword], { stdio: 'ignore' });
  const admin = new Redis({ port, host: '127.0.0.1', password: adminPassword, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  admin.on('error', () => undefined);
  const stop = async () => {
    admin.disconnect();
    child.kill('SIGKILL');
  };
  for (let i = 0; ; i++) {
    try {
      await admin.connect();
      await admin.ping();
      break;
    } catch (err) {
      admin.disconnect();
      if (i >= 100) {
        await stop();
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    admin,
    url: (user) => (user ? `redis://${user.name}:${user.password}@127.0.0.1:${port}` : `redis://:${adminPassword}@127.0.0.1:${port}`),
    stop,
  };
}
