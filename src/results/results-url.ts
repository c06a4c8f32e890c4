import { fileURLToPath } from 'node:url';
import { FsResultStore } from './fs-result-store.js';
import type { ResultStore } from './result-store.js';
import { S3ResultStore, normalizePrefix } from './s3-result-store.js';

export type ResultsLocation = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

export interface S3ConnectionOptions {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
}

// S3's bucket naming rules, less the obscure ones (no "xn--" prefix, no IP-address-like names).
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Reads a results URL: `file:<directory>` (the rest taken as a path, relative to the working
 * directory unless absolute; `file:///abs/dir` is read as a proper file URL) or `s3://<bucket>/<prefix>`
 * (the prefix may be empty). Errors are sentences that never quote the URL back, as a mistyped one
 * may hold credentials.
 */
export function parseResultsUrl(url: string): ResultsLocation {
  const value = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();

  if (scheme === 'file') {
    const rest = value.slice('file:'.length);
    let dir = rest;
    if (rest.startsWith('//')) {
      try {
        dir = fileURLToPath(`file:${rest}`);
      } catch {
        throw new Error(
          'A file: results URL with "//" must be a local file URL such as file:///var/lib/qrun/results; ' +
            'write file:<directory> for a plain path.',
        );
      }
    }
    if (dir === '') throw new Error('A file: results URL needs a directory, as in file:./data/results.');
    if (dir.includes('\0')) throw new Error('A file: results URL cannot contain a NUL character.');
    return { kind: 'file', dir };
  }

  if (scheme === 's3') {
    if (!value.slice(3).startsWith('//')) {
      throw new Error('An S3 results URL must have the form s3://<bucket>/<prefix>.');
    }
    const rest = value.slice('s3://'.length);
    if (/[?#]/.test(rest)) {
      throw new Error('An S3 results URL takes no query or fragment: s3://<bucket>/<prefix>.');
    }
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1);
    if (bucket.includes('@')) {
      throw new Error(
        'An S3 results URL cannot carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ' +
          '(or another source of the AWS SDK) instead.',
      );
    }
    if (bucket === '') throw new Error('An S3 results URL needs a bucket name, as in s3://my-bucket/qrun.');
    if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
      throw new Error(
        'The bucket name in the S3 results URL is not valid: 3 to 63 lower-case letters, digits, dots ' +
          'and hyphens, starting and ending with a letter or digit.',
      );
    }
    if (/[\\\p{Cc}]/u.test(prefix)) {
      throw new Error('The prefix in the S3 results URL cannot contain backslashes or control characters.');
    }
    try {
      return { kind: 's3', bucket, prefix: normalizePrefix(prefix) };
    } catch {
      throw new Error('The prefix in the S3 results URL cannot contain "." or ".." segments.');
    }
  }

  throw new Error(
    scheme === undefined
      ? 'The results URL must be file:<directory> or s3://<bucket>/<prefix>.'
      : `The results URL must be file:<directory> or s3://<bucket>/<prefix>, not a ${scheme}: URL.`,
  );
}

/**
 * The result store a results URL names; the S3 options only matter for s3:// URLs, minFreeBytes
 * (QRUN_MIN_FREE_BYTES) only for file: ones.
 */
export function openResultStore(
  url: string,
  s3Options: S3ConnectionOptions,
  fileOptions: { minFreeBytes?: number } = {},
): ResultStore {
  const location = parseResultsUrl(url);
  if (location.kind === 'file') return new FsResultStore(location.dir, fileOptions);
  return new S3ResultStore({
    bucket: location.bucket,
    prefix: location.prefix,
    endpoint: s3Options.endpoint,
    region: s3Options.region,
    forcePathStyle: s3Options.forcePathStyle,
  });
}
