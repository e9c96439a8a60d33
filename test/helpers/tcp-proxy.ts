// A TCP proxy on a free loopback port, for faults on a live connection: it forwards both ways until
// told to blackhole (keep every socket open, carry nothing: a network that silently stops) or to cut
// (destroy every connection, and refuse new ones: a server or link that dies).
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** `host:port` of the proxy, for URLs. */
  address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /**
   * Stop carrying bytes either way on every open connection, and (unless `existingOnly`) on every
   * future one; the sockets stay open.
   */
  blackhole(existingOnly?: boolean): void;
  /** When a chunk from the client contains `text` (a command name, any case), cut or blackhole instead of forwarding it. */
  faultOn(text: string, action: 'cut' | 'blackhole'): void;
  /** Destroy every connection (both sides) and reset new ones at once. */
  cut(): void;
  /** Forward again (new connections only, after cut). */
  resume(): void;
  close(): Promise<void>;
}

type Mode = 'forward' | 'blackhole' | 'cut';

/** Starts a proxy to `target` (loopback host and port) on a port the OS picks. */
export async function startTcpProxy(target: { host?: string; port: number }, opts: { beforeConnect?: (n: number) => Promise<void> } = {}): Promise<TcpProxy> {
  let mode: Mode = 'forward';
  let trigger: { text: string; action: 'cut' | 'blackhole' } | undefined;
  const held = new WeakSet<net.Socket>();
  let accepted = 0;
  const pairs = new Set<[net.Socket, net.Socket | undefined]>();
  const server = net.createServer((client) => {
    accepted++;
    client.on('error', () => undefined);
    if (mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') {
      // accepted, never answered: bytes are read and dropped
      client.on('data', () => undefined);
      const pair: [net.Socket, net.Socket | undefined] = [client, undefined];
      pairs.add(pair);
      client.on('close', () => pairs.delete(pair));
      return;
    }
    client.pause();
    const n = accepted;
    const upstream = new net.Socket();
    upstream.on('error', () => client.destroy());
    const pair: [net.Socket, net.Socket | undefined] = [client, upstream];
    pairs.add(pair);
    const live = () => mode === 'forward' && !held.has(client);
    client.on('data', (chunk) => {
      if (trigger && chunk.toString('latin1').toLowerCase().includes(trigger.text.toLowerCase())) {
        const t = trigger;
        trigger = undefined;
        if (t.action === 'cut') api.cut();
        else held.add(client);
        return;
      }
      if (live()) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (live()) client.write(chunk);
    });
    void (opts.beforeConnect ?? (async () => undefined))(n).then(() => {
      upstream.connect({ host: target.host ?? '127.0.0.1', port: target.port }, () => client.resume());
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // in a blackhole the server never learns that the client went away (until close())
    client.on('close', () => {
      if (live()) end();
    });
    upstream.on('close', () => {
      if (live()) end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const api: TcpProxy = {
    port,
    address: `127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    blackhole(existingOnly = false) {
      for (const [c] of pairs) held.add(c);
      if (!existingOnly) mode = 'blackhole';
    },
    faultOn(text, action) {
      trigger = { text, action };
    },
    cut() {
      mode = 'cut';
      for (const [c, u] of pairs) {
        c.resetAndDestroy();
        u?.destroy();
      }
      pairs.clear();
    },
    resume() {
      mode = 'forward';
    },
    async close() {
      for (const [c, u] of pairs) {
        c.destroy();
        u?.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
