// "Nothing was written": the catalog rows and the contents of every relation of some schemas, and
// every key under a Redis prefix, taken before and after a command and compared whole.
import type { Redis } from 'ioredis';
import type { QueryClient } from './engine.js';

/**
 * The schemas' pg_namespace and pg_class rows (with their xmin: any DDL, ALTER included, rewrites
 * them) and, per table, every row with its xmin (an UPDATE that sets the same values still gets a
 * new xmin), as one comparable value. Schemas that do not exist show as absent. On either engine
 * (a node-postgres client, or engine.ts's embedded client).
 */
export async function pgSnapshot(c: Pick<QueryClient, 'query'>, schemas: readonly string[]): Promise<unknown> {
  const ns = (await c.query(`SELECT nspname, xmin::text AS xmin, nspowner::regrole::text AS owner, nspacl::text AS acl FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname`, [schemas])).rows;
  const rels = (
    await c.query<{ nspname: string; relname: string; relkind: string; xmin: string; relfilenode: string }>(
      `SELECT n.nspname, c.relname, c.relkind::text AS relkind, c.xmin::text AS xmin, c.relfilenode::text AS relfilenode, c.relacl::text AS acl
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1) ORDER BY 1, 2`,
      [schemas],
    )
  ).rows;
  const contents: Record<string, string> = {};
  for (const r of rels.filter((x) => x.relkind === 'r')) {
    const q = `"${r.nspname}"."${r.relname}"`;
    const { rows } = await c.query<{ n: number; sum: string | null }>(`SELECT count(*)::int AS n, md5(string_agg(t.xmin::text || ':' || t::text, '|' ORDER BY t::text)) AS sum FROM ${q} t`);
    contents[`${r.nspname}.${r.relname}`] = `${rows[0]!.n}:${rows[0]!.sum}`;
  }
  return { ns, rels, contents };
}

/** Every key under `prefix` with its type, whether it has a TTL, and its DUMP (streams: entries, groups, consumers, pending). */
export async function redisSnapshot(r: Redis, prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    for (const k of keys) {
      const [type, pttl, dump] = await Promise.all([r.type(k), r.pttl(k), r.dumpBuffer(k)]);
      out[k] = `${type}|${pttl > 0 ? 'ttl' : pttl}|${dump?.toString('hex') ?? 'gone'}`;
    }
    cursor = next;
    if (cursor === '0') break;
  }
  return out;
}
