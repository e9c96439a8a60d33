// Read-only stream access: paged XRANGE (bounded memory however long the stream), pending lookups.
// Never XREADGROUP: reading through a group creates consumers and takes ownership of entries.
import net from 'node:net';
import type tls from 'node:tls';
import { EVENT_FIELD } from '../core/contract.js';
import { compareEntryIds, entryIdAfter } from '../core/stream-id.js';
import { classifyRedisError, masters, type RedisClient } from './connect.js';

export type RawEntry = [id: string, fields: string[]];

export interface PageOptions {
  /** Inclusive start id, or '-' */
  start?: string;
  /** Inclusive end id, or '+' */
  end?: string;
  pageSize?: number;
  /** Ask for the next page before yielding this one, so the server works while the caller does. */
  prefetch?: boolean;
}

/**
 * Yields pages of entries in id order; the next page starts at the id right after the last one seen
 * (entryIdAfter: an inclusive start, so Redis 5.0-6.0 page too; the exclusive `(id` needs 6.2).
 */
export async function* xrangePages(client: RedisClient, key: string, opts: PageOptions = {}): AsyncGenerator<RawEntry[]> {
  yield* pages(opts, (from, end, count) => client.xrange(key, from, end, 'COUNT', count) as Promise<RawEntry[]>, (e) => e[0]);
}

/** An entry as reply bytes: [id, [field, value, ...]]. */
export type BufferEntry = [id: Buffer, fields: Buffer[]];

/** xrangePages with every id, field and value left as bytes, for callers that decode strictly. */
export async function* xrangeBufferPages(client: RedisClient, key: string, opts: PageOptions = {}): AsyncGenerator<BufferEntry[]> {
  yield* pages(opts, (from, end, count) => client.xrangeBuffer(key, from, end, 'COUNT', count) as unknown as Promise<BufferEntry[]>, (e) => e[0].toString('latin1'));
}

async function* pages<E>(opts: PageOptions, fetchPage: (from: string, end: string, count: number) => Promise<E[]>, idOf: (e: E) => string): AsyncGenerator<E[]> {
  const end = opts.end ?? '+';
  const count = opts.pageSize ?? 1000;
  let start = opts.start ?? '-';
  const fetch = (from: string) => fetchPage(from, end, count);
  let next: Promise<E[]> | undefined = fetch(start);
  while (next) {
    const page = await next;
    next = undefined;
    if (page.length === 0) return;
    const last = idOf(page[page.length - 1]!);
    const after = entryIdAfter(last);
    const more = after !== null && page.length === count && (end === '+' || compareEntryIds(after, end) <= 0);
    if (after !== null) start = after;
    if (more && opts.prefetch) {
      next = fetch(start);
      // a caller that stops early never awaits it: don't let its failure go unhandled
      next.catch(() => undefined);
    }
    yield page;
    if (!more) return;
    next ??= fetch(start);
  }
}

export interface PendingInfo {
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/**
 * Pending state of each id in `group`, one XPENDING per id, pipelined. A missing group yields
 * `groupMissing: true` rather than an error.
 */
export async function pendingForIds(
  client: RedisClient,
  key: string,
  group: string,
  ids: readonly string[],
): Promise<{ groupMissing: boolean; byId: Map<string, PendingInfo> }> {
  const byId = new Map<string, PendingInfo>();
  if (ids.length === 0) return { groupMissing: false, byId };
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.xpending(key, group, id, id, 1);
  const results = (await pipeline.exec()) ?? [];
  for (let i = 0; i < results.length; i++) {
    const [err, reply] = results[i]!;
    if (err) {
      if (/NOGROUP/i.test(err.message)) return { groupMissing: true, byId };
      throw err;
    }
    const row = (reply as Array<[string, string, number, number]>)[0];
    if (row) byId.set(row[0], { consumer: row[1], idleMs: Number(row[2]), deliveries: Number(row[3]) });
  }
  return { groupMissing: false, byId };
}

// ---- Raw pages: XRANGE over a socket of our own, replies left as bytes ----
// ioredis decodes each reply into nested arrays of strings, which costs more than the scan itself;
// the scan reads ids and `data` values straight from the reply bytes. The socket is opened with the
// client's own settings (host, port, user, password, database, TLS; a cluster node found by MOVED).

/**
 * One page of entries: per entry, four offsets into `bytes`: id start, id end, data start (-1: none),
 * data end. The bytes are reused: a page is good until the next one is asked for.
 */
export interface RawPage {
  bytes: Buffer;
  at: Int32Array;
  count: number;
}

interface Endpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: tls.ConnectionOptions;
  connectTimeout: number;
  /** Bound on each wait for a reply (the client's commandTimeout); 0 = none. */
  commandTimeout: number;
  connectionName?: string;
}

interface NodeOptions {
  host?: string;
  port?: number;
  path?: string | null;
  username?: string | null;
  password?: string | null;
  db?: number;
  tls?: tls.ConnectionOptions;
  connectTimeout?: number;
  commandTimeout?: number;
  connectionName?: string;
  sentinels?: unknown[] | null;
}

/** How to reach the server with the client's settings; undefined when it is not a plain TCP/TLS server (unix socket, sentinel). */
function endpointOf(client: RedisClient): Endpoint | undefined {
  const node = masters(client)[0];
  const o = node?.options as NodeOptions | undefined;
  if (!o || o.path || (o.sentinels && o.sentinels.length) || !o.host || !o.port) return undefined;
  return {
    host: o.host,
    port: o.port,
    username: o.username ?? undefined,
    password: o.password ?? undefined,
    db: o.db,
    tls: o.tls,
    connectTimeout: o.connectTimeout ?? 10_000,
    commandTimeout: o.commandTimeout ?? 0,
    connectionName: o.connectionName,
  };
}

/** True when xrangeRawPages can read through `client`'s server; false: use xrangePages. */
export function canReadRaw(client: RedisClient): boolean {
  return endpointOf(client) !== undefined;
}

const CR = 13;
/** header(): not all of it has arrived. */
const INCOMPLETE = -0x80000000;
const DATA = Buffer.from(EVENT_FIELD);
const encode = (args: readonly string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** A reply error (MOVED, WRONGTYPE, ...) as ioredis would give it. */
export class RawReplyError extends Error {}

/** Reads replies off one socket: simple strings, errors, and XRANGE's array of entries as offsets. */
class RawConnection {
  private store: Buffer = Buffer.allocUnsafe(1 << 17);
  private spare?: Buffer;
  private len = 0;
  private waiter?: { resolve: () => void; reject: (e: unknown) => void };
  private failure?: unknown;

  private constructor(
    private readonly socket: net.Socket,
    private readonly commandTimeout: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.append(chunk);
      const w = this.waiter;
      this.waiter = undefined;
      w?.resolve();
    });
    const fail = (e: unknown) => {
      this.failure ??= e;
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('Connection is closed')));
    // a server that stops answering while a reply is awaited (idle between pages is fine)
    socket.on('timeout', () => {
      if (this.waiter) {
        fail(new Error('Command timed out'));
        socket.destroy();
      }
    });
  }

  static async open(ep: Endpoint): Promise<RawConnection> {
    // node:tls (and with it most of node:crypto) is loaded only for a TLS endpoint: not at start-up
    const socket = ep.tls ? (await import('node:tls')).connect({ host: ep.host, port: ep.port, ...ep.tls }) : net.connect({ host: ep.host, port: ep.port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect ETIMEDOUT ${ep.host}:${ep.port}`)), ep.connectTimeout);
      socket.once(ep.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    }).catch((e) => {
      socket.destroy();
      throw e;
    });
    const conn = new RawConnection(socket, ep.commandTimeout);
    try {
      if (ep.password) await conn.simple(ep.username ? ['AUTH', ep.username, ep.password] : ['AUTH', ep.password]);
      if (ep.db) await conn.simple(['SELECT', String(ep.db)]);
      // named as the client is, so CLIENT LIST shows whose connection it is
      if (ep.connectionName) await conn.simple(['CLIENT', 'SETNAME', ep.connectionName]).catch((e) => {
        // a user not allowed to name connections can still read: the name is a courtesy
        if (!(e instanceof RawReplyError)) throw e;
      });
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  close(): void {
    this.socket.destroy();
  }

  send(args: readonly string[]): void {
    this.socket.write(encode(args));
  }

  private append(chunk: Buffer): void {
    if (this.len + chunk.length > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.store.length * 2, this.len + chunk.length));
      this.store.copy(grown, 0, 0, this.len);
      this.store = grown;
    }
    chunk.copy(this.store, this.len);
    this.len += chunk.length;
  }

  private more(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.commandTimeout > 0) this.socket.setTimeout(this.commandTimeout);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /**
   * Hands the first `end` bytes over and moves the rest (a reply already arriving) to the store of
   * the page before, which the caller is done with once it asks for this one: two stores in turn.
   */
  private take(end: number): Buffer {
    const out = this.store.subarray(0, end);
    const rest = this.len - end;
    const spare = this.spare;
    const next = spare && spare.length >= rest ? spare : Buffer.allocUnsafe(Math.max(1 << 17, rest * 2));
    this.store.copy(next, 0, end, this.len);
    this.spare = this.store;
    this.store = next;
    this.len = rest;
    return out;
  }

  /** Where the item after the last header read starts. */
  private after = 0;

  /**
   * The number of a `<type><digits>\r\n` header at p (its end in `after`), or INCOMPLETE when not all
   * of it is here yet. No tuple per header: five or more are read per entry.
   */
  private header(p: number): number {
    const b = this.store;
    let v = 0;
    let neg = false;
    let i = p + 1;
    if (b[i] === 45) {
      neg = true;
      i++;
    }
    for (; i + 1 < this.len; i++) {
      const c = b[i]!;
      if (c === CR) {
        this.after = i + 2;
        return neg ? -v : v;
      }
      v = v * 10 + c - 48;
    }
    return INCOMPLETE;
  }

  /** An error reply at the start: its text, or undefined if the reply is not an error. Waits for the whole line. */
  private async errorLine(): Promise<string | undefined> {
    if (this.store[0] !== 45 && this.store[0] !== 43) return undefined;
    for (;;) {
      const crlf = this.store.subarray(0, this.len).indexOf('\r\n');
      if (crlf >= 0) {
        const text = this.store.toString('utf8', 1, crlf);
        const isError = this.store[0] === 45;
        this.take(crlf + 2);
        return isError ? text : '';
      }
      await this.more();
    }
  }

  /** A command answered by +OK (AUTH, SELECT). */
  async simple(args: readonly string[]): Promise<void> {
    this.send(args);
    while (this.len === 0) await this.more();
    const err = await this.errorLine();
    if (err === undefined) throw new Error(`unexpected reply to ${args[0]}`);
    if (err) throw new RawReplyError(err);
  }

  /** The reply to an XRANGE sent earlier, as a page of offsets. */
  async page(): Promise<RawPage> {
    while (this.len === 0) await this.more();
    const err = await this.errorLine();
    if (err !== undefined) throw new RawReplyError(err || 'unexpected simple reply to XRANGE');
    if (this.store[0] !== 42) throw new Error(`unexpected reply type ${String.fromCharCode(this.store[0]!)} to XRANGE`);
    let count: number;
    while ((count = this.header(0)) === INCOMPLETE) await this.more();
    const at = new Int32Array(Math.max(count, 0) * 4);
    let p = this.after;
    for (let e = 0; e < count; ) {
      const q = this.entry(p, at, e * 4);
      if (q < 0) {
        await this.more();
        continue;
      }
      p = q;
      e++;
    }
    return { bytes: this.take(p), at, count: Math.max(count, 0) };
  }

  /** Parses one `*2 id *2n fields...` entry at p into at[k..k+3]; returns the end, or -1 if not all here. */
  private entry(p: number, at: Int32Array, k: number): number {
    const b = this.store;
    if (p >= this.len || this.header(p) === INCOMPLETE) return -1;
    const idStart = this.after;
    const idLength = idStart < this.len ? this.header(idStart) : INCOMPLETE;
    if (idLength === INCOMPLETE) return -1;
    const id = this.after;
    const idEnd = id + idLength;
    if (idEnd + 2 >= this.len) return -1;
    const fieldCount = this.header(idEnd + 2);
    if (fieldCount === INCOMPLETE) return -1;
    let q = this.after;
    let dataStart = -1;
    let dataEnd = -1;
    for (let i = 0; i < fieldCount; i++) {
      const length = q < this.len ? this.header(q) : INCOMPLETE;
      if (length === INCOMPLETE) return -1;
      const start = this.after;
      const end = start + length;
      if (end + 2 > this.len) return -1;
      // the value after a field named `data` (the last such, as the string path does)
      if (i % 2 === 1) {
        if (dataStart === -2) {
          dataStart = start;
          dataEnd = end;
        }
      } else if (length === DATA.length && isData(b, start)) dataStart = -2;
      q = end + 2;
    }
    at[k] = id;
    at[k + 1] = idEnd;
    at[k + 2] = dataStart;
    at[k + 3] = dataEnd;
    return q;
  }
}

function isData(b: Buffer, at: number): boolean {
  for (let i = 0; i < DATA.length; i++) if (b[at + i] !== DATA[i]) return false;
  return true;
}

/**
 * A cluster redirection: `MOVED <slot> <host>:<port>` (the slot lives there now: ask there from now
 * on) or `ASK <slot> <host>:<port>` (the slot is migrating: ask there for this request only, after
 * ASKING). An empty host means the same host. Rules: https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#ask-redirection
 */
export function redirection(message: string, from: { host: string; port: number }): { kind: 'moved' | 'ask'; host: string; port: number } | undefined {
  const m = /^(MOVED|ASK) \d+ (.*):(\d+)$/.exec(message);
  return m ? { kind: m[1] === 'ASK' ? 'ask' : 'moved', host: m[2] || from.host, port: Number(m[3]) } : undefined;
}

async function open(ep: Endpoint): Promise<RawConnection> {
  try {
    return await RawConnection.open(ep);
  } catch (e) {
    throw classifyRedisError(e, `${ep.host}:${ep.port}`);
  }
}

/**
 * xrangePages' pages as raw reply bytes (see RawPage), the next page always requested before this one
 * is yielded. Check canReadRaw(client) first. The client's keyPrefix is added to `key`.
 */
export async function* xrangeRawPages(client: RedisClient, key: string, opts: PageOptions = {}): AsyncGenerator<RawPage> {
  const first = endpointOf(client);
  if (!first) throw new Error('xrangeRawPages: the client does not connect over TCP (use xrangePages)');
  let ep: Endpoint = first;
  const fullKey = ((client.options as { keyPrefix?: string }).keyPrefix ?? '') + key;
  const end = opts.end ?? '+';
  const count = opts.pageSize ?? 1000;
  let start = opts.start ?? '-';
  let conn = await open(ep);
  // during a reshard: the node the migrating slot's keys are moving to, asked with ASKING first
  let askConn: RawConnection | undefined;
  let askAt = '';
  const args = (from: string) => ['XRANGE', fullKey, from, end, 'COUNT', String(count)];
  const request = (from: string) => conn.send(args(from));
  try {
    request(start);
    for (let redirects = 0; ; ) {
      let page: RawPage;
      try {
        page = await conn.page();
      } catch (e) {
        const to = e instanceof RawReplyError ? redirection(e.message, ep) : undefined;
        if (!to || redirects++ >= 5) throw classifyRedisError(e, `${ep.host}:${ep.port}`);
        if (to.kind === 'moved') {
          conn.close();
          ep = { ...ep, host: to.host, port: to.port };
          conn = await open(ep);
          request(start);
          continue;
        }
        // ASK: this request only goes to the importing node, preceded by ASKING
        const target: Endpoint = { ...ep, host: to.host, port: to.port };
        if (!askConn || askAt !== `${to.host}:${to.port}`) {
          askConn?.close();
          askConn = await open(target);
          askAt = `${to.host}:${to.port}`;
        }
        try {
          await askConn.simple(['ASKING']);
          askConn.send(args(start));
          page = await askConn.page();
        } catch (e2) {
          throw classifyRedisError(e2, askAt);
        }
      }
      redirects = 0;
      if (page.count === 0) return;
      const k = (page.count - 1) * 4;
      const last = page.bytes.toString('latin1', page.at[k]!, page.at[k + 1]!);
      const after = entryIdAfter(last);
      const more = after !== null && page.count === count && (end === '+' || compareEntryIds(after, end) <= 0);
      if (after !== null) start = after;
      if (more) request(start);
      yield page;
      if (!more) return;
    }
  } finally {
    conn.close();
    askConn?.close();
  }
}
