import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Closing the server ends connections that have not yet sent a whole request head.
 *
 * `forceCloseConnections: 'idle'` closes keep-alive connections between requests, but Node counts a
 * connection that is open and silent (a browser's preconnect, a client that died before writing, a
 * slowloris sending its headers a byte at a time) as busy: `server.close()` then waits for it until
 * `headersTimeout` (60 s), and a restart takes a minute for nothing. Such a connection has no request
 * to finish, so it is cut at once (so is one between requests); one with a request under way is left to
 * end as Fastify decides.
 */
export function registerSilentConnectionReaper(app: FastifyInstance): void {
  /** Every open connection, with how many of its requests Fastify has and has not answered yet. */
  const inFlight = new Map<Socket, number>();
  let closing = false;

  app.server.on('connection', (socket: Socket) => {
    // Between preClose and the listener stopping a connection can still be accepted: it gets nothing.
    if (closing) {
      socket.destroy();
      return;
    }
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  // 'request' comes when a head is complete (pipelined ones each in turn); 'close' when its response
  // has ended or been cut.
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      if (inFlight.has(socket)) inFlight.set(socket, left);
    });
  });

  app.addHook('preClose', async () => {
    closing = true;
    for (const [socket, requests] of inFlight) if (requests === 0) socket.destroy();
  });
}
