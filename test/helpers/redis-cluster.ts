// A real three-master Redis Cluster from the redis-server binary on free loopback ports, for the
// tests that must pass on a cluster. Each caller gets its own cluster and stops it.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

export interface TestCluster {
  ports: number[];
  /** Comma-separated node URLs: what --redis-url takes for a cluster. */
  url: string;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePorts(n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // the cluster bus listens on port + 10000: stay below 55535
    const base = 21000 + Math.floor(Math.random() * 30000);
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const ok = await Promise.all(ports.flatMap((p) => [portFree(p), portFree(p + 10000)]));
    if (ok.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a test cluster');
}

/** A one-shot probe client; its connection errors are expected while a node starts. */
function probe(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on('error', () => undefined);
  return r;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startRedisCluster(masters = 3): Promise<TestCluster> {
  const ports = await freePorts(masters);
  const dir = mkdtempSync(join(tmpdir(), 'dd-cluster-'));
  const children: ChildProcess[] = [];
  for (const port of ports) {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir);
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '5000', '--save', '', '--appendonly', 'no', '--dir', nodeDir, '--protected-mode', 'no'],
      { stdio: 'ignore' },
    );
    children.push(child);
  }
  const stop = async () => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(async () => {
        const r = probe(port);
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } finally {
          r.disconnect();
        }
      }, `redis-server on ${port}`);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await waitFor(async () => {
        const r = probe(port);
        try {
          await r.connect();
          const info = (await r.call('CLUSTER', 'INFO')) as string;
          return info.includes('cluster_state:ok');
        } finally {
          r.disconnect();
        }
      }, `cluster state ok on ${port}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), stop };
}
