/**
 * Closing the HTTP server (a restart, a deploy) does not wait on connections that have no request under
 * way. Node counts an open connection that has not sent a whole request head as busy and keeps
 * `server.close()` waiting for it until `headersTimeout` (60 s): a browser's preconnect or a client that
 * trickles its headers would hold every restart for a minute. The CI once hung on exactly that.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';

/** Opens a raw TCP connection to the server and resolves once it is established. */
function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the server has closed the connection (its end or a reset both count). */
function closedByServer(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed || socket.readableEnded) return resolve();
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
    socket.resume();
  });
}

describe('closing the server', () => {
  // Well under headersTimeout: without the fix the close would still be waiting when this fails.
  it('cuts connections that are silent, half way through a head, or between requests', async () => {
    const s = await startTestServer();
    let sockets: Socket[] = [];
    try {
      const silent = await open(s.url);
      const halfHead = await open(s.url);
      halfHead.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      const keptAlive = await open(s.url);
      sockets = [silent, halfHead, keptAlive];
      const answered = new Promise<string>((resolve) => {
        let text = '';
        keptAlive.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (text.includes('{"status":"ok"}')) resolve(text);
        });
      });
      keptAlive.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
      expect(await answered).toMatch(/^HTTP\/1\.1 200/);
      // All three are still open before the close: nothing else ends them.
      for (const socket of sockets) expect(socket.destroyed).toBe(false);

      await s.close();
      await Promise.all(sockets.map(closedByServer));
    } finally {
      for (const socket of sockets) socket.destroy();
      await s.close();
    }
  }, 20_000);
});
