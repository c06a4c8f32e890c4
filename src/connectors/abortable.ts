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
