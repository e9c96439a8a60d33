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
  /** Stop carrying bytes either way on every open and future connection; the sockets stay open. */
  blackhole(): void;
  /** Destroy every connection (both sides) and reset new ones at once. */
  cut(): void;
  /** Forward again (new connections only, after cut). */
  resume(): void;
  close(): Promise<void>;
}

type Mode = 'forward' | 'blackhole' | 'cut';

/** Starts a proxy to `target` (loopback host and port) on a port the OS picks. */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = 'forward';
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
    const upstream = net.connect({ host: target.host ?? '127.0.0.1', port: target.port });
    upstream.on('error', () => client.destroy());
    const pair: [net.Socket, net.Socket | undefined] = [client, upstream];
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (chunk) => {
        if (mode === 'forward') to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      // in a blackhole the server never learns that the client went away
      if (mode !== 'blackhole') end();
    });
    upstream.on('close', () => {
      if (mode !== 'blackhole') end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    blackhole() {
      mode = 'blackhole';
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
}
