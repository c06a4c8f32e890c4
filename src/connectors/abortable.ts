import { QueryAbortedError } from './connector.js';

/**
 * `promise`, or a QueryAbortedError the moment the signal fires. On abort the promise is left to settle
 * on its own (its rejection is swallowed): the caller is already tearing the session down.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new QueryAbortedError(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new QueryAbortedError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Wraps a generator so that return() also releases the session: a generator's own return() skips its
 * `finally` when iteration never started, which would leak the connection.
 */
export function closingIterable<T>(
  generator: AsyncGenerator<T>,
  session: { close(): Promise<void> },
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => generator.next(),
      return: async (value?: unknown) => {
        const result = await generator.return(value as undefined);
        await session.close();
        return result;
      },
      throw: (err?: unknown) => generator.throw(err),
    }),
  };
}
