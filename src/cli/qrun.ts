#!/usr/bin/env node
import { Command } from 'commander';
import { createQrun } from '../app/qrun.js';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { qrunVersion } from '../core/version.js';
import { buildHttpApp } from '../http/app.js';
import { bootstrap, firstStartMessage } from '../service/bootstrap.js';

/** One line on stderr and exit 1: how every start-up failure ends. */
function fail(message: string): never {
  process.stderr.write(`qrun: ${message}\n`);
  process.exit(1);
}

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

async function start(): Promise<void> {
  const config = configOrExit();
  const qrun = await createQrun(config).catch((err: unknown) =>
    fail(`cannot open the metadata store: ${err instanceof Error ? err.message : String(err)}`),
  );
  const boot = await bootstrap(qrun);
  const app = await buildHttpApp(qrun);
  await qrun.startWorker();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    // A second signal while draining means "now".
    process.once(signal as NodeJS.Signals, () => process.exit(1));
    try {
      await app.close();
      await qrun.close();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await qrun.close();
    fail(
      `cannot listen on ${config.host}:${config.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const message = firstStartMessage(boot, `http://${host}:${port}`);
  if (message) process.stdout.write(`${message}\n`);
}

async function migrate(): Promise<void> {
  const qrun = await createQrun(configOrExit());
  await qrun.close();
  process.stdout.write('qrun: migrations are up to date.\n');
}

const program = new Command()
  .name('qrun')
  .description(
    'Asynchronous SQL query runner. Settings come from QRUN_* environment variables (see docs/OPERATIONS.md).',
  )
  .version(qrunVersion());

program
  .command('start', { isDefault: true })
  .description('Run the API and the query worker in one process (the embedded default).')
  .action(start);
program
  .command('migrate')
  .description('Bring the metadata store up to the latest schema and exit.')
  .action(migrate);

await program.parseAsync();
