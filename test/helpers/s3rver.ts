import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface S3rver {
  /** `http://127.0.0.1:<port>`, for QRUN_S3_ENDPOINT or an S3Client's endpoint (with forcePathStyle). */
  endpoint: string;
  /** A bucket that exists, created empty at start. */
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Environment for a qrun child process that keeps its results under `s3://<bucket>/<prefix>`. */
  env(prefix?: string): Record<string, string>;
  /** Stops the server and removes its files. */
  close(): Promise<void>;
}

/**
 * The s3rver child: s3rver 3 signs ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only
 * offers through its legacy provider, so listing more than one page of keys fails in a plain Node 20
 * process. It therefore runs in its own `node --openssl-legacy-provider`, leaving the test process (and
 * the SDK under test) on the default crypto. It reports its port on stdout and exits when stdin closes,
 * so it never outlives the test process, even one that crashes.
 */
const CHILD = `
const S3rver = require(process.env.S3RVER_MODULE);
const options = JSON.parse(process.env.S3RVER_OPTIONS);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: options.directory,
  configureBuckets: [{ name: options.bucket }],
});
server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\\n'),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

/** Starts s3rver on a free loopback port with its files in a fresh temp directory and one bucket. */
export async function startS3rver(options: { bucket?: string } = {}): Promise<S3rver> {
  const bucket = options.bucket ?? 'qrun-test';
  const directory = await mkdtemp(join(tmpdir(), 'qrun-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD], {
    env: {
      ...process.env,
      S3RVER_MODULE: createRequire(import.meta.url).resolve('s3rver'),
      S3RVER_OPTIONS: JSON.stringify({ directory, bucket }),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Writing to a child that already died must not crash the test process.
  child.stdin.on('error', () => undefined);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const line = stdout.split('\n', 2);
        if (line.length === 2) resolve((JSON.parse(line[0]!) as { port: number }).port);
      });
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`s3rver exited before listening (${code ?? signal}):\n${stderr}`)),
      );
    });
  } catch (error) {
    child.kill();
    await rm(directory, { recursive: true, force: true });
    throw error;
  }

  const endpoint = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    bucket,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    region: REGION,
    env: (prefix = 'qrun') => ({
      QRUN_RESULTS_URL: `s3://${bucket}/${prefix}`,
      QRUN_S3_ENDPOINT: endpoint,
      QRUN_S3_REGION: REGION,
      QRUN_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    }),
    close: () =>
      (closing ??= (async () => {
        child.stdin.end();
        await exited;
        await rm(directory, { recursive: true, force: true });
      })()),
  };
}
