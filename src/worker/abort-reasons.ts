import { qrunErrorDetails, type ErrorDetails } from '../core/task-status.js';

/**
 * Why a running query was stopped. The reason travels as the AbortSignal's reason, so the runner can
 * record the right terminal status and message whichever part of the system pulled the plug.
 */
export type AbortReason =
  { kind: 'canceled' } | { kind: 'timeout'; seconds: number } | { kind: 'shutdown' } | { kind: 'lease_lost' };

export function abortReason(reason: unknown): AbortReason | undefined {
  if (typeof reason === 'object' && reason !== null && 'kind' in reason) return reason as AbortReason;
  return undefined;
}

/** The `error` a client sees. `canceled` is exactly the contract's word. */
export function abortMessage(reason: AbortReason): string {
  switch (reason.kind) {
    case 'canceled':
      return 'canceled';
    case 'timeout':
      return `timeout: the query ran longer than its limit of ${reason.seconds} s and was stopped on the database.`;
    case 'shutdown':
      return 'interrupted: qrun was shut down while the query ran; submit it again.';
    case 'lease_lost':
      return 'lost: this worker lost its lease on the query.';
  }
}

/** The `error_details` of a query stopped for this reason. */
export function abortDetails(reason: AbortReason): ErrorDetails {
  switch (reason.kind) {
    case 'canceled':
      return qrunErrorDetails('canceled');
    case 'timeout':
      return qrunErrorDetails('timeout');
    case 'shutdown':
      return qrunErrorDetails('interrupted');
    case 'lease_lost':
      return qrunErrorDetails('lost');
  }
}
