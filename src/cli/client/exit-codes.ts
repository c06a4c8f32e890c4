/** The exit codes of the client commands (docs/CLI.md). */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The query (or the API request) failed: the reason is on stderr. */
  failed: 1,
  /** A usage error: a missing or invalid argument or option. */
  usage: 2,
  /** The server could not be reached, or refused the credentials (401/403), or none are configured. */
  unreachable: 3,
  /** Interrupted by Ctrl-C (SIGINT); a running query was canceled on the server. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with a message on stderr and the given exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string): CliError => new CliError(message, EXIT.usage);
