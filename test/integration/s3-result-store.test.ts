/**
 * The S3 result store against s3rver (a local S3 imitation): the shared ResultStore contract at the
 * bucket's root and under a prefix with multipart uploads forced, then what only S3 has: the key
 * layout, multipart uploads, deletes that span several listings, and failures that must surface as
 * ResultStoreError without credentials in them. Also the results-URL parser that picks the store.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FsResultStore } from '../../src/results/fs-result-store.js';
import { ResultStoreError } from '../../src/results/result-store.js';
import { openResultStore, parseResultsUrl } from '../../src/results/results-url.js';
import { MIN_PART_SIZE, S3ResultStore, normalizePrefix } from '../../src/results/s3-result-store.js';
import type { S3ResultStoreOptions } from '../../src/results/s3-result-store.js';
import { freePort } from '../helpers/process.js';
import { resultStoreSuite } from '../helpers/result-store-suite.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rver } from '../helpers/s3rver.js';

let s3: S3rver;
/** A client of the test's own, to look at the bucket behind the store's back. */
let raw: S3Client;

beforeAll(async () => {
  s3 = await startS3rver();
  // Stores built without a client find these through the SDK's default chain, as qrun's do.
  vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
  raw = client();
});

afterAll(async () => {
  raw?.destroy();
  vi.unstubAllEnvs();
  await s3?.close();
});

function client(credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }) {
  return new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials });
}

function store(options: Partial<S3ResultStoreOptions> = {}): S3ResultStore {
  return new S3ResultStore({
    bucket: s3.bucket,
    prefix: '',
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    ...options,
  });
}

/** A client that records the name of each command sent through it, in order. */
function watchedClient(): { client: S3Client; commands: string[] } {
  const watched = client();
  const commands: string[] = [];
  watched.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: 'qrunTestWatch' },
  );
  return { client: watched, commands };
}

async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await raw.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** Runs `task` for 0..count-1, at most `parallel` at a time. */
async function forEachLimited(count: number, parallel: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const lanes = Array.from({ length: parallel }, async () => {
    while (next < count) await task(next++);
  });
  await Promise.all(lanes);
}

resultStoreSuite('S3, bucket root', () => store());
resultStoreSuite('S3 under a prefix, multipart above 1 MiB', () =>
  store({ prefix: '/suite//results/', multipartThreshold: 1024 * 1024, partSize: MIN_PART_SIZE }),
);

describe('S3ResultStore', () => {
  it('keeps each page at <prefix>/<id>/<page>.json', async () => {
    const s = store({ prefix: '//layout/a//' });
    expect(s.prefix).toBe('layout/a');
    const id = randomUUID();
    await s.putPage(id.toUpperCase(), 0, Buffer.from('[0]'));
    await s.putPage(id, 12, Buffer.from('[12]'));
    expect((await listKeys('layout/')).sort()).toEqual([`layout/a/${id}/0.json`, `layout/a/${id}/12.json`]);
    await s.close();

    const root = store();
    const other = randomUUID();
    await root.putPage(other, 3, Buffer.from('[3]'));
    expect(await listKeys(`${other}/`)).toEqual([`${other}/3.json`]);
    await root.close();
  });

  it('uploads a page above the threshold in parts and reads it back byte for byte', async () => {
    const { client: watched, commands } = watchedClient();
    const s = store({ client: watched, multipartThreshold: 1024, partSize: MIN_PART_SIZE });
    const id = randomUUID();
    // Random bytes, so parts put back in the wrong order or cut at the wrong place cannot match.
    const page = randomBytes(2 * MIN_PART_SIZE + 12_345);
    await s.putPage(id, 0, page);
    expect(commands.filter((name) => name === 'UploadPartCommand')).toHaveLength(3);
    expect(commands).toContain('CompleteMultipartUploadCommand');
    expect(commands).not.toContain('PutObjectCommand');
    expect((await s.getPage(id, 0))?.equals(page)).toBe(true);

    // Up to the threshold a page is one PutObject.
    commands.length = 0;
    await s.putPage(id, 1, Buffer.alloc(1024, 0x62));
    expect(commands).toEqual(['PutObjectCommand']);
    expect((await s.getPage(id, 1))?.equals(Buffer.alloc(1024, 0x62))).toBe(true);
    await s.close();
    watched.destroy();
  });

  it('deletes a result of more than 1000 pages, across listings and delete batches', async () => {
    const { client: watched, commands } = watchedClient();
    const s = store({ client: watched, prefix: 'many' });
    const id = randomUUID();
    const neighbour = id.slice(0, 30) + randomUUID().slice(30);
    const pages = 1005;
    await forEachLimited(pages, 16, (page) => s.putPage(id, page, Buffer.from(`[${page}]`)));
    await s.putPage(neighbour, 0, Buffer.from('[n]'));
    expect(await listKeys(`many/${id}/`)).toHaveLength(pages);

    commands.length = 0;
    await s.deleteResult(id);
    expect(commands.filter((name) => name === 'ListObjectsV2Command')).toHaveLength(2);
    expect(commands.filter((name) => name === 'DeleteObjectsCommand')).toHaveLength(2);
    expect(await listKeys(`many/${id}/`)).toEqual([]);
    expect((await s.getPage(neighbour, 0))?.toString()).toBe('[n]');
    await s.deleteResult(id);
    await s.close();
    watched.destroy();
  });

  it('lists only its results: objects beside them and names that are not lower-case UUIDs are left out', async () => {
    const s = store({ prefix: 'listing' });
    const results = [randomUUID(), randomUUID(), randomUUID()].sort();
    for (const id of results) await s.putPage(id, 0, Buffer.from('[]'));
    const put = (key: string) =>
      raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: Buffer.from('x') }));
    const stranger = randomUUID();
    await put(`listing/${stranger.toUpperCase()}/0.json`);
    await put(`listing/${stranger}.bak/0.json`);
    await put('listing/not-a-uuid/0.json');
    // Objects right under the prefix take room in a listing's answer, so small limits need several requests.
    for (let i = 0; i < 5; i++) await put(`listing/${i}-readme.txt`);
    await put(`listingx/${randomUUID()}/0.json`);

    expect(await s.listResultIds(undefined, 100)).toEqual(results);
    for (const limit of [1, 2]) {
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const batch = await s.listResultIds(after, limit);
        seen.push(...batch);
        if (batch.length < limit) break;
        after = batch.at(-1);
      }
      expect(seen).toEqual(results);
    }
    await s.close();

    const missing = store({ bucket: 'no-such-bucket' });
    await expect(missing.listResultIds(undefined, 10)).rejects.toMatchObject({
      name: 'ResultStoreError',
      operation: 'list',
    });
    await missing.close();
  });

  it('reports a missing bucket as ResultStoreError on every operation, not as a missing page', async () => {
    const s = store({ bucket: 'no-such-bucket' });
    const id = randomUUID();
    const put = s.putPage(id, 0, Buffer.from('[]'));
    await expect(put).rejects.toBeInstanceOf(ResultStoreError);
    await expect(put).rejects.toMatchObject({
      operation: 'put',
      message: /NoSuchBucket.*no-such-bucket|no-such-bucket.*NoSuchBucket/,
    });
    await expect(s.getPage(id, 0)).rejects.toMatchObject({ name: 'ResultStoreError', operation: 'get' });
    await expect(s.deleteResult(id)).rejects.toMatchObject({ name: 'ResultStoreError', operation: 'delete' });
    await s.close();
  });

  it('reports refused credentials without quoting the secret', async () => {
    const secret = 'wJalrXUtnFEMI-not-a-real-secret';
    const refused = client({ accessKeyId: 'NOT-S3RVER', secretAccessKey: secret });
    const s = store({ client: refused });
    const failure = s.putPage(randomUUID(), 0, Buffer.from('[]'));
    await expect(failure).rejects.toBeInstanceOf(ResultStoreError);
    const error = (await failure.catch((e: unknown) => e)) as ResultStoreError;
    expect(error.operation).toBe('put');
    expect(error.message).toMatch(/InvalidAccessKeyId/);
    expect(error.message).not.toContain(secret);
    await s.close();
    refused.destroy();
  });

  it('reports an unreachable endpoint as ResultStoreError, masking a password in its URL', async () => {
    const port = await freePort();
    const s = store({ endpoint: `http://user:hunter2@127.0.0.1:${port}` });
    const failure = s.getPage(randomUUID(), 0);
    await expect(failure).rejects.toBeInstanceOf(ResultStoreError);
    await expect(failure).rejects.toMatchObject({ operation: 'get' });
    const error = (await failure.catch((e: unknown) => e)) as Error;
    expect(error.message).not.toContain('hunter2');
    await s.close();
  });

  it('refuses calls after close, and leaves a client it was given open', async () => {
    const given = client();
    const s = store({ client: given });
    await s.close();
    await s.close();
    await expect(s.getPage(randomUUID(), 0)).rejects.toThrow(/closed/);
    await expect(s.putPage(randomUUID(), 0, Buffer.from('[]'))).rejects.toThrow(/closed/);
    await expect(s.deleteResult(randomUUID())).rejects.toThrow(/closed/);
    const listed = await given.send(new ListObjectsV2Command({ Bucket: s3.bucket, MaxKeys: 1 }));
    expect(listed.$metadata.httpStatusCode).toBe(200);
    given.destroy();
  });

  it('refuses bad options', () => {
    expect(() => store({ partSize: MIN_PART_SIZE - 1 })).toThrow(/5 MiB/);
    expect(() => store({ multipartThreshold: -1 })).toThrow(RangeError);
    expect(() => store({ bucket: '' })).toThrow(/bucket/);
    expect(() => store({ prefix: 'a/../b' })).toThrow(RangeError);
  });

  it('normalizes prefixes', () => {
    expect(normalizePrefix('')).toBe('');
    expect(normalizePrefix('/')).toBe('');
    expect(normalizePrefix('qrun')).toBe('qrun');
    expect(normalizePrefix('/qrun/results/')).toBe('qrun/results');
    expect(normalizePrefix('a//b///c')).toBe('a/b/c');
    expect(() => normalizePrefix('./a')).toThrow(RangeError);
    expect(() => normalizePrefix('a/..')).toThrow(RangeError);
  });
});

describe('parseResultsUrl', () => {
  it.each([
    ['file:./data/results', './data/results'],
    ['file:/var/lib/qrun/results', '/var/lib/qrun/results'],
    ['file:data', 'data'],
    ['FILE:/x', '/x'],
    ['  file:/padded  ', '/padded'],
    ['file:/with space/100%', '/with space/100%'],
    ['file:///var/lib/qrun/results', '/var/lib/qrun/results'],
    ['file://localhost/srv/results', '/srv/results'],
    ['file:///srv/a%20b', '/srv/a b'],
  ])('reads %j as the directory %j', (url, dir) => {
    expect(parseResultsUrl(url)).toEqual({ kind: 'file', dir });
  });

  it.each([
    ['s3://qrun-results', 'qrun-results', ''],
    ['s3://qrun-results/', 'qrun-results', ''],
    ['s3://qrun-results/prod', 'qrun-results', 'prod'],
    ['s3://qrun-results/prod/eu/', 'qrun-results', 'prod/eu'],
    ['s3://my.bucket-1//a//b', 'my.bucket-1', 'a/b'],
    ['S3://abc/x', 'abc', 'x'],
  ])('reads %j as bucket %j, prefix %j', (url, bucket, prefix) => {
    expect(parseResultsUrl(url)).toEqual({ kind: 's3', bucket, prefix });
  });

  it.each([
    ['', /file:<directory> or s3:\/\/<bucket>/],
    ['./data/results', /file:<directory> or s3:\/\/<bucket>/],
    ['http://example.com/results', /not a http: URL/],
    ['postgres://user:pw@host/db', /not a postgres: URL/],
    ['file:', /needs a directory/],
    ['file:   ', /needs a directory/],
    ['file://server/share', /local file URL/],
    ['s3:', /s3:\/\/<bucket>\/<prefix>/],
    ['s3:/bucket/prefix', /s3:\/\/<bucket>\/<prefix>/],
    ['s3://', /needs a bucket name/],
    ['s3:///prefix', /needs a bucket name/],
    ['s3://ab', /bucket name .* not valid/],
    ['s3://My_Bucket/x', /bucket name .* not valid/],
    ['s3://-bucket/x', /bucket name .* not valid/],
    ['s3://bucket-/x', /bucket name .* not valid/],
    ['s3://a..b/x', /bucket name .* not valid/],
    [`s3://${'a'.repeat(64)}`, /bucket name .* not valid/],
    ['s3://bucket/a/../b', /"\." or "\.\." segments/],
    ['s3://bucket/a?versioning', /no query or fragment/],
    ['s3://bucket/a#b', /no query or fragment/],
    ['s3://bucket/a\\b', /backslashes or control characters/],
    ['s3://bucket/a\nb', /backslashes or control characters/],
  ])('refuses %j', (url, message) => {
    expect(() => parseResultsUrl(url)).toThrow(message);
  });

  it('refuses credentials in an S3 URL without quoting them', () => {
    const parse = () => parseResultsUrl('s3://AKIAEXAMPLE:topsecret@bucket/prefix');
    expect(parse).toThrow(/AWS_ACCESS_KEY_ID/);
    expect(parse).not.toThrow(/topsecret/);
  });
});

describe('openResultStore', () => {
  const s3Options = { region: 'us-east-1', forcePathStyle: true };

  it('opens a file store for file: URLs', async () => {
    const opened = openResultStore('file:/tmp/qrun-results-url-test', s3Options);
    expect(opened).toBeInstanceOf(FsResultStore);
    expect((opened as FsResultStore).root).toBe('/tmp/qrun-results-url-test');
    await opened.close();
  });

  it('opens an S3 store for s3:// URLs that works against the endpoint given', async () => {
    const opened = openResultStore(`s3://${s3.bucket}/opened/`, { ...s3Options, endpoint: s3.endpoint });
    expect(opened).toBeInstanceOf(S3ResultStore);
    expect(opened).toMatchObject({ bucket: s3.bucket, prefix: 'opened' });
    const id = randomUUID();
    await opened.putPage(id, 0, Buffer.from('[1]'));
    expect(await listKeys(`opened/${id}/`)).toEqual([`opened/${id}/0.json`]);
    await opened.close();
  });

  it('gives the same errors as parseResultsUrl', () => {
    expect(() => openResultStore('s3://', s3Options)).toThrow(/needs a bucket name/);
  });
});
