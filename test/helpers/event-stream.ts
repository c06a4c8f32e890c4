import type { Auth } from './server.js';

/** One Server-Sent Event: its name and its data, parsed as JSON. */
export interface ServerEvent {
  event: string;
  data: any;
}

/** A Server-Sent Events response being read as it comes. */
export interface EventStream {
  status: number;
  headers: Headers;
  /** Events so far, in the order they came. */
  events: ServerEvent[];
  /** Comment lines so far (heartbeats: `ping`). */
  comments: string[];
  /** The JSON body of an answer that is not a stream (an error). */
  body: any;
  /** Resolves when the server ended the stream (or it was closed here). */
  ended: Promise<void>;
  isEnded(): boolean;
  /** Drops the connection, as a client that goes away does. */
  close(): void;
}

export function authHeader(auth: Auth): Record<string, string> {
  if (auth.bearer) return { authorization: `Bearer ${auth.bearer}` };
  if (auth.basic) return { authorization: `Basic ${Buffer.from(`${auth.basic}:`).toString('base64')}` };
  if (auth.raw) return { authorization: auth.raw };
  return {};
}

/** GETs `path` and reads it as a Server-Sent Events stream, frame by frame. */
export async function openEvents(baseUrl: string, path: string, auth: Auth): Promise<EventStream> {
  const controller = new AbortController();
  const res = await fetch(baseUrl + path, {
    headers: { accept: 'text/event-stream', ...authHeader(auth) },
    signal: controller.signal,
  });
  const events: ServerEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const stream: EventStream = {
    status: res.status,
    headers: res.headers,
    events,
    comments,
    body: undefined,
    ended: Promise.resolve(),
    isEnded: () => ended,
    close: () => controller.abort(),
  };
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const text = await res.text();
    stream.body = text === '' ? undefined : JSON.parse(text);
    ended = true;
    return stream;
  }
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  stream.ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          parseFrame(buffer.slice(0, end), events, comments);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Closed here (AbortError): the stream is over for this client.
    } finally {
      ended = true;
    }
  })();
  return stream;
}

function parseFrame(frame: string, events: ServerEvent[], comments: string[]): void {
  let event = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) comments.push(line.slice(1).trim());
    else if (line.startsWith('event: ')) event = line.slice('event: '.length);
    else if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
  }
  if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')) });
}
