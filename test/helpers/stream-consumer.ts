// A consumer that reads a stream through its group as the service's worker does: XREADGROUP
// GROUP <group> <consumer> COUNT n BLOCK ms STREAMS <stream> >, then XACK what it read. On its own
// connection (a blocking read would hold up a shared one). Records every history_id it was given.
import { fieldsToRecord, parseEventJson } from '../../src/core/event.js';
import { closeRedis, connectRedis, type RedisClient } from '../../src/redis/connect.js';

export interface TestConsumer {
  /** history_id -> times delivered. */
  delivered: Map<string, number>;
  /** Entries read in all. */
  read(): number;
  stop(): Promise<void>;
}

/** Creates the group as the worker does (XGROUP CREATE ... 0 MKSTREAM), ignoring BUSYGROUP. */
export async function createGroup(client: RedisClient, stream: string, group = 'digest-workers'): Promise<void> {
  await client.xgroup('CREATE', stream, group, '0', 'MKSTREAM').catch((err: Error) => {
    if (!/BUSYGROUP/.test(err.message)) throw err;
  });
}

export async function startConsumer(opts: { url: string; keyPrefix: string; cluster: boolean; stream: string; group?: string; count?: number; blockMs?: number }): Promise<TestConsumer> {
  const group = opts.group ?? 'digest-workers';
  const client = await connectRedis({ url: opts.url, keyPrefix: opts.keyPrefix, cluster: opts.cluster });
  await createGroup(client, opts.stream, group);
  const delivered = new Map<string, number>();
  let read = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const reply = (await client.xreadgroup('GROUP', group, `digest-worker-${process.pid}`, 'COUNT', opts.count ?? 10, 'BLOCK', opts.blockMs ?? 50, 'STREAMS', opts.stream, '>')) as
        | Array<[string, Array<[string, string[]]>]>
        | null;
      const entries = reply?.[0]?.[1] ?? [];
      for (const [, fields] of entries) {
        read++;
        const parsed = parseEventJson(fieldsToRecord(fields).data ?? '');
        const h = parsed.ok ? (parsed.event.history_id ?? '?') : '?';
        delivered.set(h, (delivered.get(h) ?? 0) + 1);
      }
      if (entries.length) await client.xack(opts.stream, group, ...entries.map(([id]) => id));
    }
  })();
  return {
    delivered,
    read: () => read,
    async stop() {
      running = false;
      await loop;
      await closeRedis(client);
    },
  };
}

/** Waits (bounded) until `check` holds. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
