import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { Authenticator } from '../auth/authenticator.js';
import type { Config, Role } from '../config/config.js';
import { ConnectionResolver } from '../connectors/connection-resolver.js';
import { getConnector, listConnectors } from '../connectors/registry.js';
import { createLogger } from '../core/logger.js';
import { systemClock, type Clock } from '../core/time.js';
import { Metrics } from '../core/metrics.js';
import { SecretBox } from '../crypto/secret-box.js';
import { loadSecretKey, sealedKeyIds } from '../crypto/secret-key.js';
import { createPageTokens } from '../encoding/page-token.js';
import { EgressPolicy } from '../net/egress-policy.js';
import type { ResultStore } from '../results/result-store.js';
import { ConnectionService } from '../service/connection-service.js';
import { IdentityService } from '../service/identity-service.js';
import { QueryService } from '../service/query-service.js';
import { migrateToLatest, openMetadataStore, type MetadataStore } from '../store/database.js';
import { ApiKeysRepository } from '../store/repositories/api-keys.js';
import { ConnectionsRepository } from '../store/repositories/connections.js';
import { IdempotencyKeysRepository } from '../store/repositories/idempotency-keys.js';
import { OrganizationsRepository } from '../store/repositories/organizations.js';
import { PageDeletionsRepository } from '../store/repositories/page-deletions.js';
import { QueryTasksRepository } from '../store/repositories/query-tasks.js';
import { UsersRepository } from '../store/repositories/users.js';
import { WebhookDeliveriesRepository } from '../store/repositories/webhook-deliveries.js';
import { WebhookSecretsRepository } from '../store/repositories/webhook-secrets.js';
import { WebhookService } from '../service/webhook-service.js';
import { WebhookDeliverer } from '../worker/webhook-deliverer.js';
import { ConnectionHealthChecks } from '../worker/connection-health.js';
import { QueryRunner } from '../worker/query-runner.js';
import { Sweeper } from '../worker/sweeper.js';
import {
  createDispatcher,
  createProgressStore,
  createRateLimitRedis,
  createResultStore,
  createTaskEvents,
} from './deployment.js';

/** Every service of one qrun process, assembled once from the configuration. The HTTP layer and the CLI share it. */
export interface Qrun {
  config: Config;
  log: Logger;
  metrics: Metrics;
  store: MetadataStore;
  results: ResultStore;
  authenticator: Authenticator;
  identity: IdentityService;
  connections: ConnectionService;
  /** Opens stored connections (below both the connection API and the runner). */
  resolver: ConnectionResolver;
  queries: QueryService;
  /** The webhook signing secret and the submit-time checks of callback_url. */
  webhooks: WebhookService;
  /** Delivers callbacks: at once when a task ends, then retried by its own loop. */
  deliverer: WebhookDeliverer;
  runner: QueryRunner;
  sweeper: Sweeper;
  /** The periodic connection checks (`healthcheck_interval`), which the sweeper starts. */
  connectionChecks: ConnectionHealthChecks;
  /** Where the HTTP rate limit counts when api processes share Redis; undefined: in this process's memory. */
  rateLimitRedis: Redis | undefined;
  /**
   * Starts this process's background work: the sweeper always (every process may sweep), and for the
   * `start` and `worker` roles the query runner, after recovering what a crash left behind.
   */
  startBackground(): Promise<void>;
  isReady(): Promise<boolean>;
  /** Stops running queries (they end failed, "interrupted"), then closes every store. */
  close(): Promise<void>;
}

/**
 * The one place where the deployment is chosen: which metadata store, result store and dispatcher.
 * Runs migrations before returning.
 */
export async function createQrun(
  config: Config,
  role: Role = 'start',
  /** For tests: a clock the services, the sweeper and idempotency read instead of the system's. */
  options: { clock?: Clock } = {},
): Promise<Qrun> {
  const clock = options.clock ?? systemClock;
  const log = createLogger(config.logLevel);
  // The data directory holds every tenant's SQL, the keys and the secrets key: the owner's alone.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  try {
    chmodSync(config.dataDir, 0o700);
  } catch (err) {
    log.warn({ err, dataDir: config.dataDir }, 'could not make the data directory private (mode 0700)');
  }
  // Each organization's directory below it is created (0700) on first use: src/connectors/file-path.ts.
  mkdirSync(config.fileRoot, { recursive: true, mode: 0o700 });
  const store = openMetadataStore(config.databaseUrl, {
    poolSize: config.databasePoolSize,
    onPoolError: (err) => log.warn({ err }, 'metadata store connection lost'),
  });
  try {
    await migrateToLatest(store.db);
  } catch (err) {
    await store.close();
    throw err;
  }
  const connectionRows = new ConnectionsRepository(store.db);
  const webhookSecrets = new WebhookSecretsRepository(store.db);
  let secretKey: Buffer;
  try {
    const sealedWith = sealedKeyIds(await connectionRows.configurationsWithSecrets());
    // Webhook signing secrets are sealed with the same key.
    for (const sealed of await webhookSecrets.sealedValues()) {
      const keyId = SecretBox.sealedKeyId(sealed);
      if (keyId !== undefined) sealedWith.add(keyId);
    }
    secretKey = loadSecretKey(config.secretKey, config.dataDir, sealedWith);
  } catch (err) {
    await store.close();
    throw err;
  }
  const secretBox = new SecretBox(secretKey);
  // Page tokens get their own key, derived from the secrets key, so neither use can weaken the other.
  const pageTokens = createPageTokens(Buffer.from(hkdfSync('sha256', secretKey, '', 'qrun page tokens', 32)));

  const keys = new ApiKeysRepository(store.db);
  const tasks = new QueryTasksRepository(store.db);
  const idempotency = new IdempotencyKeysRepository(store.db);
  const pageDeletions = new PageDeletionsRepository(store.db);
  const results = createResultStore(config);
  const events = await createTaskEvents(config, log);
  const progress = await createProgressStore(config, log);
  const metrics = new Metrics();
  const dispatcher = await createDispatcher(config, log);
  const rateLimitRedis = await createRateLimitRedis(config, log, role);

  const authenticator = new Authenticator(keys);
  const stopForgetting = events.onIdentityChanged(() => authenticator.forgetAll());
  const identity = new IdentityService(
    new OrganizationsRepository(store.db),
    new UsersRepository(store.db),
    keys,
    () => {
      authenticator.forgetAll();
      // Other processes forget too; if the hint is lost, their cache entries expire within seconds.
      events
        .publishIdentityChanged()
        .catch((err: unknown) => log.warn({ err }, 'could not tell other processes that keys changed'));
    },
    clock,
  );
  // Tenant connections and callback deliveries alike.
  const egress = new EgressPolicy({
    allow: config.egressAllow,
    deny: config.egressDeny,
    metadataDatabaseUrl: config.databaseUrl,
  });
  const resolver = new ConnectionResolver({ get: getConnector, list: listConnectors }, secretBox, egress, {
    fileRoot: config.fileRoot,
    duckdb: {
      threads: config.duckdbThreads,
      memoryBytes: config.duckdbMemoryBytes,
      maxTempBytes: config.duckdbMaxTempBytes,
    },
    warmSessions: { limit: config.connectionConcurrency, idleMs: config.sessionIdleSeconds * 1000 },
  });
  const connections = new ConnectionService(connectionRows, resolver, {
    maxTests: config.maxConnectionTests,
    clock,
  });
  const webhooks = new WebhookService({ secrets: webhookSecrets, secretBox, egress }, { clock });
  const deliverer = new WebhookDeliverer(
    {
      deliveries: new WebhookDeliveriesRepository(store.db),
      secrets: webhookSecrets,
      secretBox,
      egress,
      log,
    },
    { clock, retentionMs: config.taskRetentionDays * 86_400_000 },
  );
  const queries = new QueryService(
    {
      tasks,
      connections: connectionRows,
      idempotency,
      dispatcher,
      events,
      results,
      pageTokens,
      progress,
      callbacks: webhooks,
      taskEnded: deliverer.taskEnded,
    },
    {
      maxQueryBytes: config.maxQueryBytes,
      queryTimeoutSeconds: config.queryTimeoutSeconds,
      pageRowsMax: config.pageRowsMax,
      resultTtlSeconds: config.resultTtlSeconds,
      organizationMaxQueued: config.organizationMaxQueued,
      maxWaitsPerKey: config.maxWaitsPerKey,
      clock,
    },
  );
  const runner = new QueryRunner(
    {
      tasks,
      connectionRows,
      resolver,
      results,
      pageDeletions,
      events,
      progress,
      metrics,
      log,
      taskEnded: deliverer.taskEnded,
    },
    {
      workerId: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
      pageRows: config.pageRows,
      pageBytes: config.pageBytes,
      maxResultBytes: config.maxResultBytes,
      leaseSeconds: config.leaseSeconds,
      resultTtlSeconds: config.resultTtlSeconds,
    },
  );
  const connectionChecks = new ConnectionHealthChecks(
    { connections: connectionRows, resolver, log },
    { now: clock },
  );
  const sweeper = new Sweeper(
    {
      tasks,
      idempotency,
      pageDeletions,
      results,
      events,
      dispatcher,
      log,
      connectionChecks,
      taskEnded: deliverer.taskEnded,
    },
    {
      intervalSeconds: config.sweepIntervalSeconds,
      resultTtlSeconds: config.resultTtlSeconds,
      taskRetentionDays: config.taskRetentionDays,
      orphanSweepIntervalSeconds: config.orphanSweepIntervalSeconds,
      now: clock,
    },
  );

  let closed = false;
  return {
    config,
    log,
    metrics,
    store,
    results,
    authenticator,
    identity,
    connections,
    resolver,
    queries,
    webhooks,
    deliverer,
    runner,
    sweeper,
    connectionChecks,
    rateLimitRedis,
    async startBackground() {
      if (role !== 'api') {
        // A SQLite store belongs to this one process: whatever was running died with the last one.
        // Elsewhere other workers may be alive, and only an expired lease proves a task lost.
        if (store.dialect === 'sqlite') {
          const lost = await sweeper.recoverAfterRestart();
          if (lost > 0)
            log.warn({ lost }, 'marked queries interrupted by the last shutdown as failed (lost)');
        }
        dispatcher.start(runner.run);
      }
      sweeper.start();
      deliverer.start();
    },
    async isReady() {
      if (closed) return false;
      await sql`select 1`.execute(store.db);
      return true;
    },
    async close() {
      if (closed) return;
      closed = true;
      await sweeper.stop();
      await connectionChecks.close();
      runner.abortAll({ kind: 'shutdown' });
      await dispatcher.close();
      // After the last statement ended: none gives a session back any more.
      await resolver.close();
      // After the runner's last tasks ended (their deliveries are recorded; the next start delivers them).
      await deliverer.stop();
      runner.close();
      stopForgetting();
      await events.close();
      await progress.close();
      if (rateLimitRedis) {
        // QUIT lets pending replies arrive; a client that is not connected has nothing to wait for.
        if (rateLimitRedis.status === 'ready')
          await rateLimitRedis.quit().catch(() => rateLimitRedis.disconnect());
        else rateLimitRedis.disconnect();
      }
      await results.close();
      await store.close();
    },
  };
}
