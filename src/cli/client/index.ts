import type { Command } from 'commander';
import { registerConnections } from './commands/connections.js';
import { registerLogin } from './commands/login.js';
import { registerQueries } from './commands/queries.js';
import { registerQuery } from './commands/query.js';

/**
 * The client commands of the qrun binary (docs/CLI.md): they talk to a qrun server over its HTTP API
 * only, never to its stores.
 */
export function registerClientCommands(program: Command): void {
  registerLogin(program);
  registerConnections(program);
  registerQuery(program);
  registerQueries(program);
  program.addHelpText(
    'after',
    `
Client examples (docs/CLI.md; \`qrun <command> --help\` for each):
  $ qrun login --url http://127.0.0.1:8080 --api-key "$(cat data/admin-key)"
  $ qrun connections list
  $ qrun query warehouse "select n, md5(n::text) as hash from generate_series(1, 5) n"
  $ qrun query warehouse -f report.sql -o report.parquet

Client exit codes: 0 done, 1 failed, 2 usage error, 3 server unreachable or key refused, 130 Ctrl-C.`,
  );
}
