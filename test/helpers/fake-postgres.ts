import { createServer, type Server, type Socket } from 'node:net';

/** What a fake PostgreSQL server saw: each accepted connection, and every password sent to it. */
export interface FakePostgres {
  host: string;
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Passwords received in cleartext, in order. */
  passwords(): string[];
  close(): Promise<void>;
}

/**
 * A server that speaks just enough of PostgreSQL's protocol to steal a password: it refuses TLS, asks
 * for cleartext password authentication (as a hostile server would), records what arrives, and then
 * fails the login. Listens on loopback only.
 */
export async function startFakePostgres(host = '127.0.0.1'): Promise<FakePostgres> {
  let accepted = 0;
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!started) {
          // Untyped start-up packets: length, then a request code.
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          buffer = buffer.subarray(length);
          if (code === 80877103 || code === 80877104) {
            socket.write('N'); // SSLRequest / GSSENCRequest: not here
            continue;
          }
          started = true;
          // AuthenticationCleartextPassword
          const ask = Buffer.alloc(9);
          ask.write('R', 0);
          ask.writeInt32BE(8, 1);
          ask.writeInt32BE(3, 5);
          socket.write(ask);
          continue;
        }
        if (buffer.length < 5) return;
        const type = String.fromCharCode(buffer[0]!);
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        const body = buffer.subarray(5, 1 + length);
        buffer = buffer.subarray(1 + length);
        if (type === 'p') {
          received.push(body.subarray(0, body.indexOf(0)).toString('utf8'));
          socket.end(errorResponse('28P01', 'password authentication failed (fake server)'));
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host,
    port,
    connections: () => accepted,
    passwords: () => [...received],
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat([Buffer.from(`SFATAL\0C${code}\0M${message}\0`, 'utf8'), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}
