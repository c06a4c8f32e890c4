import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { framed, type PageFrame } from '../encoding/page-frame.js';
import { ResultStoreError, isResultKey, listLimit, pageNumber, resultKey } from './result-store.js';
import type { ResultStore } from './result-store.js';

const MiB = 1024 * 1024;
/** S3 refuses multipart parts below 5 MiB (all but the last), and so does lib-storage's Upload. */
export const MIN_PART_SIZE = 5 * MiB;
/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;
/** ListObjectsV2 answers at most 1000 names per request. */
const LIST_BATCH = 1000;

let sdkLoading: Promise<typeof S3Sdk> | undefined;
/**
 * The AWS SDK (some 20 MB of memory) is imported at a store's first request, not with this module: the
 * embedded default, which stores files, never loads it (docs/ARCHITECTURE.md).
 */
function loadSdk(): Promise<typeof S3Sdk> {
  sdkLoading ??= import('@aws-sdk/client-s3');
  return sdkLoading;
}

export interface S3ResultStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket; slashes around and doubled inside are dropped. May be empty. */
  prefix: string;
  /** An S3-compatible endpoint (MinIO, Ceph, ...); AWS's own endpoint for the region when absent. */
  endpoint?: string;
  region: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`: what most S3-compatible servers need. */
  forcePathStyle: boolean;
  /**
   * A client to use instead of building one from the options above (endpoint, region and
   * forcePathStyle are then ignored). The caller owns it: close() leaves it open.
   */
  client?: S3Client;
  /** Pages larger than this many bytes go up as a multipart upload. Default 8 MiB. */
  multipartThreshold?: number;
  /** Part size of multipart uploads, at least 5 MiB. Default 8 MiB. */
  partSize?: number;
}

/**
 * The scale-out deployment's result store: one object per page at `<prefix>/<id>/<page>.json` in an
 * S3-compatible bucket. S3 makes a PutObject or a completed multipart upload visible whole or not at
 * all, so readers never see a prefix of a page without any temp-object dance.
 *
 * Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles,
 * instance roles): they never pass through qrun's own configuration, so they cannot end up in it.
 */
export class S3ResultStore implements ResultStore {
  readonly bucket: string;
  /** The normalized prefix: no leading, trailing or doubled slashes; '' for the bucket's root. */
  readonly prefix: string;
  /** The caller's client, or ours once the first request has made it (see connect()). */
  private client: S3Client | undefined;
  private readonly clientOptions: Pick<S3ResultStoreOptions, 'endpoint' | 'region' | 'forcePathStyle'>;
  private readonly ownsClient: boolean;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private closed = false;

  constructor(options: S3ResultStoreOptions) {
    if (typeof options.bucket !== 'string' || options.bucket === '') {
      throw new Error('An S3 result store needs a bucket name.');
    }
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix);
    this.multipartThreshold = options.multipartThreshold ?? 8 * MiB;
    this.partSize = options.partSize ?? 8 * MiB;
    if (!Number.isSafeInteger(this.multipartThreshold) || this.multipartThreshold < 0) {
      throw new RangeError(
        `multipartThreshold must be a non-negative integer, not ${this.multipartThreshold}.`,
      );
    }
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new RangeError(`partSize must be an integer of at least 5 MiB, not ${this.partSize}.`);
    }
    this.ownsClient = options.client === undefined;
    this.client = options.client;
    this.clientOptions = {
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
    };
  }

  /** The SDK and the client, both made at the first request (loadSdk()). */
  private async connect(): Promise<{ sdk: typeof S3Sdk; client: S3Client }> {
    const sdk = await loadSdk();
    this.assertOpen();
    const { endpoint, region, forcePathStyle } = this.clientOptions;
    this.client ??= new sdk.S3Client({
      region,
      ...(endpoint === undefined ? {} : { endpoint }),
      forcePathStyle,
      // Without these a silent network or server would hang a worker's putPage forever; the SDK's
      // own retries then take over. The idle timeout, unlike a total one, suits large pages too.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
    });
    return { sdk, client: this.client };
  }

  async putPage(queryId: string, page: number, bytes: Buffer): Promise<void> {
    this.assertOpen();
    const key = this.pageKey(resultKey(queryId), pageNumber(page));
    const params = { Bucket: this.bucket, Key: key, Body: bytes, ContentType: 'application/json' };
    try {
      const { sdk, client } = await this.connect();
      if (bytes.length > this.multipartThreshold) {
        const { Upload } = await import('@aws-sdk/lib-storage');
        // Parts are retried one by one, so a network blip late in a large page does not resend it all.
        await new Upload({ client, params, partSize: this.partSize, queueSize: 4 }).done();
      } else {
        await client.send(new sdk.PutObjectCommand(params));
      }
    } catch (error) {
      throw this.failure('put', `Could not write page ${page} of result ${queryId}`, error);
    }
  }

  async getPage(queryId: string, page: number, frame?: PageFrame): Promise<Buffer | undefined> {
    this.assertOpen();
    const key = this.pageKey(resultKey(queryId), pageNumber(page));
    try {
      const { sdk, client } = await this.connect();
      const response = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (response.Body === undefined) return framed(new Uint8Array(0), frame);
      const body = await response.Body.transformToByteArray();
      // A connection cut mid-body must not pass for a shorter page.
      if (response.ContentLength !== undefined && body.byteLength !== response.ContentLength) {
        throw new Error(`got ${body.byteLength} of ${response.ContentLength} bytes`);
      }
      return framed(body, frame);
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      throw this.failure('get', `Could not read page ${page} of result ${queryId}`, error);
    }
  }

  async deleteResult(queryId: string): Promise<void> {
    this.assertOpen();
    // The trailing slash keeps a result whose id merely starts with this one out of the listing.
    const resultPrefix = this.resultPrefix(resultKey(queryId));
    try {
      const { sdk, client } = await this.connect();
      let continuationToken: string | undefined;
      do {
        const listed = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: resultPrefix,
            MaxKeys: DELETE_BATCH,
            ContinuationToken: continuationToken,
          }),
        );
        const keys = (listed.Contents ?? []).flatMap((object) =>
          object.Key === undefined ? [] : [{ Key: object.Key }],
        );
        // The token points past the last listed key, so deleting these before the next listing is safe.
        for (let i = 0; i < keys.length; i += DELETE_BATCH) {
          const deleted = await client.send(
            new sdk.DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: keys.slice(i, i + DELETE_BATCH), Quiet: true },
            }),
          );
          // DeleteObjects answers 200 even when single keys fail (e.g. access denied): check each.
          const first = deleted.Errors?.[0];
          if (first !== undefined) {
            throw new Error(
              `${deleted.Errors?.length ?? 1} object(s) were not deleted, the first (${first.Key ?? '?'}) with ` +
                `${first.Code ?? 'an unknown error'}${first.Message ? `: ${first.Message}` : ''}`,
            );
          }
        }
        continuationToken = listed.IsTruncated === true ? listed.NextContinuationToken : undefined;
      } while (continuationToken !== undefined);
    } catch (error) {
      throw this.failure('delete', `Could not delete result ${queryId}`, error);
    }
  }

  async listResultIds(after: string | undefined, limit: number): Promise<string[]> {
    this.assertOpen();
    const from = after === undefined ? undefined : resultKey(after);
    listLimit(limit);
    const base = this.prefix === '' ? '' : `${this.prefix}/`;
    const ids: string[] = [];
    // Each request starts after the last name seen rather than from a continuation token: tokens are
    // not meant to be kept between sweeps, and s3rver does not count common prefixes against MaxKeys.
    let startAfter = from === undefined ? undefined : pastPrefix(this.resultPrefix(from));
    try {
      const { sdk, client } = await this.connect();
      for (;;) {
        const listed = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base,
            Delimiter: '/',
            MaxKeys: Math.min(limit, LIST_BATCH),
            StartAfter: startAfter,
          }),
        );
        // One common prefix `<prefix>/<id>/` per result; objects right under the prefix are not results.
        const prefixes = (listed.CommonPrefixes ?? []).flatMap((p) =>
          p.Prefix === undefined ? [] : [p.Prefix],
        );
        for (const prefix of prefixes) {
          const name = prefix.slice(base.length, -1);
          if (isResultKey(name) && (from === undefined || name > from)) ids.push(name);
        }
        if (ids.length >= limit || listed.IsTruncated !== true) break;
        const lastKey = listed.Contents?.at(-1)?.Key;
        const lastPrefix = prefixes.at(-1);
        const next = [lastKey, lastPrefix === undefined ? undefined : pastPrefix(lastPrefix)]
          .filter((name): name is string => name !== undefined)
          .sort()
          .at(-1);
        // A truncated answer that names nothing would list the same place forever.
        if (next === undefined || (startAfter !== undefined && next <= startAfter)) break;
        startAfter = next;
      }
    } catch (error) {
      throw this.failure('list', 'Could not list the results', error);
    }
    return ids.sort().slice(0, limit);
  }

  /** A bucket has no free space to measure; S3 answers a full quota by failing the write. */
  async assertRoom(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client?.destroy();
  }

  /** `id` is already a validated lower-case UUID and `page` a non-negative integer. */
  private pageKey(id: string, page: number): string {
    return `${this.resultPrefix(id)}${page}.json`;
  }

  private resultPrefix(id: string): string {
    return this.prefix === '' ? `${id}/` : `${this.prefix}/${id}/`;
  }

  private failure(
    operation: 'put' | 'get' | 'delete' | 'list',
    what: string,
    error: unknown,
  ): ResultStoreError {
    return new ResultStoreError(`${what} in S3 bucket ${this.bucket}: ${describe(error)}`, operation, {
      cause: error,
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The result store is closed.');
  }
}

/**
 * A name after every key under `prefix` (which ends in '/') and before the next prefix: '0' is the
 * character right after '/', so `a/b/…` < `a/b0` < `a/c…`.
 */
function pastPrefix(prefix: string): string {
  return `${prefix.slice(0, -1)}0`;
}

/**
 * Drops slashes around the prefix and doubled inside it, so `/a//b/` and `a/b` name the same place.
 * Dot segments are refused: HTTP stacks on the way may resolve them and put pages somewhere else.
 */
export function normalizePrefix(prefix: string): string {
  const segments = prefix.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw new RangeError(`An S3 key prefix cannot contain "." or ".." segments: ${JSON.stringify(prefix)}.`);
  }
  return segments.join('/');
}

interface SdkError {
  name?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/**
 * NoSuchKey is a missing page; so is a bare 404 (some S3-compatible servers send no code with it).
 * NoSuchBucket is a 404 too, but a misconfiguration that must not read as "no such page".
 */
function isMissingKey(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, $metadata } = error as SdkError;
  if (name === 'NoSuchKey') return true;
  return $metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket';
}

/**
 * The SDK's error name, HTTP status and message. None of them carry the secret key (requests are
 * signed, the key never travels); an endpoint URL with user:password in it is still masked, in case a
 * network error quotes it.
 */
function describe(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { name, message, $metadata } = error as SdkError;
  const label = [
    typeof name === 'string' && name !== 'Error' ? name : '',
    typeof $metadata?.httpStatusCode === 'number' ? `(HTTP ${$metadata.httpStatusCode})` : '',
  ]
    .filter((part) => part !== '')
    .join(' ');
  const text = typeof message === 'string' ? message : String(error);
  return (label === '' ? text : `${label}: ${text}`).replace(/\/\/[^/\s@]*@/g, '//***@');
}
