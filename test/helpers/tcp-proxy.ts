import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** The proxy's loopback port. */
  port: number;
  /** Drops every connection and stops listening: an outage, as the client sees it. */
  cut(): Promise<void>;
}

/**
 * A TCP hop in front of a service (Redis, here) that a test can cut, or start as a black hole that
 * accepts connections and never answers.
 */
export async function startTcpProxy(
  target: { host: string; port: number },
  mode: 'forward' | 'blackhole' = 'forward',
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => sockets.delete(client));
    if (mode === 'blackhole') return;
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async cut() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
