#!/usr/bin/env node
// Imported first, and few static imports after it: every module imported statically is read and compiled
// before any of them runs, so the configuration (TypeBox) and the server load by import() below, once
// young-generation.ts has held the young generation.
import { releaseYoungGeneration, SERVER_COMMANDS } from './young-generation.js';
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import type { Qrun } from '../app/qrun.js';
import type { Config, Role } from '../config/config.js';
import { qrunVersion } from '../core/version.js';

// The server's modules (the app, HTTP, the stores and drivers) load only in the commands that run a server
// or the migrations: a client command (`qrun query …`) starts in a fraction of the time without them.

/** One line on stderr and exit 1: how every start-up failure ends. */
function fail(message: string): never {
  process.stderr.write(`qrun: ${message}\n`);
  process.exit(1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function configFor(role: Role | 'migrate'): Promise<Config> {
  const { checkDeployment, ConfigError, loadConfig } = await import('../config/config.js');
  try {
    const config = loadConfig();
    if (role !== 'migrate') checkDeployment(config, role);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

/** SIGTERM/SIGINT: stop taking requests, stop running queries, close the stores, exit 0. A second signal exits at once. */
function onShutdown(qrun: Qrun, server: FastifyInstance | undefined): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    qrun.log.info({ signal }, 'shutting down');
    process.once(signal, () => process.exit(1));
    try {
      await server?.close();
      await qrun.close();
    } catch (err) {
      qrun.log.error({ err }, 'shutdown was not clean');
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

async function listen(app: FastifyInstance, qrun: Qrun, host: string, port: number): Promise<string> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    await qrun.close();
    fail(`cannot listen on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? errorText(err)}`);
  }
  const address = app.server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}

/** `start` (api + worker) and `api`: the HTTP API, plus the runner for `start`. */
async function serve(role: 'start' | 'api'): Promise<void> {
  const config = await configFor(role);
  const [{ createQrun }, { bootstrap, firstStartMessage }, { buildHttpApp }] = await Promise.all([
    import('../app/qrun.js'),
    import('../service/bootstrap.js'),
    import('../http/app.js'),
  ]);
  const qrun = await createQrun(config, role).catch((err: unknown) =>
    fail(`cannot start: ${errorText(err)}`),
  );
  const boot = await bootstrap(qrun);
  const app = await buildHttpApp(qrun);
  onShutdown(qrun, app);
  await qrun.startBackground();
  const baseUrl = await listen(app, qrun, config.host, config.port);
  releaseYoungGeneration();
  const message = firstStartMessage(boot, baseUrl);
  if (message) process.stdout.write(`${message}\n`);
}

/** `worker`: runs queries; HTTP only for health and metrics, and only when QRUN_WORKER_PORT is set. */
async function work(): Promise<void> {
  const config = await configFor('worker');
  const [{ createQrun }, { buildOpsApp }] = await Promise.all([
    import('../app/qrun.js'),
    import('../http/app.js'),
  ]);
  const qrun = await createQrun(config, 'worker').catch((err: unknown) =>
    fail(`cannot start: ${errorText(err)}`),
  );
  const ops = config.workerPort === undefined ? undefined : await buildOpsApp(qrun);
  onShutdown(qrun, ops);
  await qrun.startBackground();
  if (ops) await listen(ops, qrun, config.host, config.workerPort!);
  releaseYoungGeneration();
  qrun.log.info({ concurrency: config.workerConcurrency }, 'worker running');
}

async function migrate(): Promise<void> {
  const config = await configFor('migrate');
  const { migrateToLatest, openMetadataStore } = await import('../store/database.js');
  const store = openMetadataStore(config.databaseUrl, { poolSize: 1 });
  try {
    await migrateToLatest(store.db);
  } catch (err) {
    fail(`migration failed: ${errorText(err)}`);
  } finally {
    await store.close();
  }
  process.stdout.write('qrun: the metadata store is up to date.\n');
}

// Everything qrun writes (the metadata store and its journal, keys, result pages, files a tenant writes
// through a read-write file connection) is for this user alone: files 0600, directories 0700.
process.umask(0o077);

const program = new Command()
  .name('qrun')
  .description(
    'Asynchronous SQL query runner. Settings come from QRUN_* environment variables (docs/OPERATIONS.md).',
  )
  .version(qrunVersion());

program
  .command('start', { isDefault: true })
  .description('Run the API and the query worker in one process (the embedded default).')
  .action(() => serve('start'));
program
  .command('api')
  .description('Run the HTTP API only (needs PostgreSQL and Redis); it never runs user SQL.')
  .action(() => serve('api'));
program
  .command('worker')
  .description(
    'Run queries only (needs PostgreSQL and Redis); HTTP only for /healthz, /readyz, /metrics on QRUN_WORKER_PORT.',
  )
  .action(work);
program
  .command('migrate')
  .description('Bring the metadata store up to the latest schema and exit.')
  .action(migrate);

// The client commands (login, connections, query, queries: docs/CLI.md) load only when the command line
// is not a server's: their modules (output formats, the progress line, Unicode widths) cost an idle
// `qrun start` about 5 MB. `qrun --help`, `qrun help` and every client command still have them all.
if (!SERVER_COMMANDS.has(process.argv[2])) {
  const { registerClientCommands } = await import('./client/index.js');
  registerClientCommands(program);
}

await program.parseAsync();
