import type { ConnectorContext, ParameterValue, QueryStream, StreamOptions } from '../connector.js';
import { asIs, batchRows, checkedAtOpen, rowBatches, throwIfAborted } from '../support.js';
import type { SqliteConfig } from './sqlite-connector.js';
import { databasePath, WorkerSession, type Reply } from './sqlite-session.js';
import { sqliteParameter } from './sqlite-values.js';

/**
 * One statement in a worker process of its own (for as long as it runs): the first request opens the
 * file and returns the columns with the first batch (the values are mapped in the worker), each later
 * one the next batch.
 */
export async function streamSqlite(
  config: SqliteConfig,
  sql: string,
  parameters: readonly ParameterValue[],
  options: StreamOptions,
  context: ConnectorContext,
): Promise<QueryStream> {
  const path = checkedAtOpen(() => databasePath(config, context));
  throwIfAborted(options.signal);
  const session = new WorkerSession(options.signal, options.warm);
  let first: Reply;
  try {
    first = await session.request({
      type: 'start',
      path,
      readOnly: config.read_only,
      sql,
      parameters: parameters.map(sqliteParameter),
      batchSize: batchRows(options.batchSize),
    });
  } catch (error) {
    session.dispose();
    throw error;
  }
  return {
    columns: first.type === 'columns' ? first.columns : [],
    rows: rowBatches(
      options.signal,
      { read: () => session.request({ type: 'next' }), decode: asIs, close: () => session.dispose() },
      first,
    ),
  };
}
