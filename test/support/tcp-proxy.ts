import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'open' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  /**
   * The dependency goes away: new connections are refused (nothing listens on the port) and
   * open ones are reset, as when the server process dies.
   */
  refuse(): Promise<void>;
  /**
   * The dependency stops answering: connections are still accepted, but nothing flows in either
   * direction (bytes are held), as with a hung server or a path that drops packets.
   */
  blackhole(): Promise<void>;
  /** Back to normal: listening again, and held bytes flow as a recovered network path would. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Bytes received while black-holed, in order, per direction. */
  held: { toUpstream: Buffer[]; toClient: Buffer[] };
}

/**
 * A TCP proxy a test puts between the app and PostgreSQL or Redis, to cut or freeze the
 * dependency without touching the shared server. Keeps its port across a refuse/restore
 * cycle, so the app's connection string stays valid.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'open';
  const pairs = new Set<Pair>();
  let server: net.Server;
  let port = 0;

  const flush = (p: Pair) => {
    for (const b of p.held.toUpstream.splice(0)) p.upstream.write(b);
    for (const b of p.held.toClient.splice(0)) p.client.write(b);
  };

  const accept = (client: net.Socket) => {
    const upstream = net.connect(target.port, target.host);
    const pair: Pair = { client, upstream, held: { toUpstream: [], toClient: [] } };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
    // Forwarded by hand rather than piped, so that nothing moves while black-holed.
    client.on('data', (b: Buffer) =>
      mode === 'open' ? upstream.write(b) : pair.held.toUpstream.push(b),
    );
    upstream.on('data', (b: Buffer) =>
      mode === 'open' ? client.write(b) : pair.held.toClient.push(b),
    );
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer(accept);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });

  const stopListening = () =>
    new Promise<void>((resolve) => {
      // close() waits for open connections, which are destroyed right after.
      server.close(() => resolve());
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
      pairs.clear();
    });

  await listen();
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    get connections() {
      return pairs.size;
    },
    async refuse() {
      if (mode === 'refuse') return;
      mode = 'refuse';
      await stopListening();
    },
    async blackhole() {
      if (mode === 'refuse') await listen();
      mode = 'blackhole';
    },
    async restore() {
      if (mode === 'refuse') await listen();
      mode = 'open';
      for (const p of pairs) flush(p);
    },
    async close() {
      if (mode !== 'refuse') await stopListening();
      mode = 'refuse';
    },
  };
}
