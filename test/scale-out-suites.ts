/**
 * The second pass of `npm test` (`npm run test:scale-out`, QRUN_TEST_DEPLOYMENT=scale-out) runs exactly
 * these files: the ones that reach the deployment switch (test/helpers/deployment.ts) through
 * startTestServer, deploymentEnv, metadataDatabaseUrl, openResultStore, onScaleOut, metadataOnPostgres or
 * testDeployment, directly or through a helper. Files that build their own parts (connectors, the
 * dispatchers, the event buses, the result stores, the page writer, test/e2e/scale-out.test.ts with its own
 * processes) are the same on both deployments and run in the first pass only.
 *
 * test/unit/scale-out-suites.test.ts reads the code and fails when this list and the files that use the
 * switch differ, so a new deployment-dependent file cannot be left out of the second pass.
 */
export const SCALE_OUT_SUITES: readonly string[] = [
  'test/conformance/polytomic-conformance.test.ts',
  'test/conformance/polytomic-sdk.test.ts',
  'test/e2e/crash-restart.test.ts',
  'test/e2e/start.test.ts',
  'test/integration/authenticator.test.ts',
  'test/integration/callbacks.test.ts',
  'test/integration/clean-up.test.ts',
  'test/integration/connections-api.test.ts',
  'test/integration/exports.test.ts',
  'test/integration/http-basics.test.ts',
  'test/integration/identity.test.ts',
  'test/integration/metadata-store.test.ts',
  'test/integration/queries-api.test.ts',
  'test/integration/query-events.test.ts',
  'test/integration/query-engines.test.ts',
  'test/integration/size-limits.test.ts',
  'test/integration/sweeper-clean-up.test.ts',
  'test/integration/test-deployment.test.ts',
  'test/security/api-keys.test.ts',
  'test/security/callbacks.test.ts',
  'test/security/connection-secrets.test.ts',
  'test/security/egress.test.ts',
  'test/security/exports.test.ts',
  'test/security/file-isolation.test.ts',
  'test/security/fuzz.test.ts',
  'test/security/keys-files-logs.test.ts',
  'test/security/quotas.test.ts',
  'test/security/rate-limits.test.ts',
  'test/security/warm-sessions.test.ts',
];

/** Files that use the switch but run in the first pass only, each with its reason. */
export const FIRST_PASS_ONLY: Readonly<Record<string, string>> = {
  'test/cli/cli.test.ts':
    'the CLI talks HTTP only: what it prints does not depend on the deployment behind the API',
  'test/integration/server-close.test.ts':
    'closing the HTTP server cuts connections in src/http alone, before any store or queue is closed',
  'test/browser/console.test.ts':
    'the console is static files and API calls; what it shows does not depend on the deployment behind the API',
};
