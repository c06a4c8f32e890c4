import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { createPageTokens } from '../../src/encoding/page-token.js';

const QUERY = '43d893ef-322b-47da-badb-3cf10d13a556';
const OTHER = '9b2f0c4e-1d3a-4f5b-8c7d-6e5f4a3b2c1d';
const tokens = createPageTokens(randomBytes(32));

function expectInvalid(queryId: string, token: unknown): void {
  let caught: unknown;
  try {
    tokens.verify(queryId, token as string);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(AppError);
  const error = caught as AppError;
  expect(error.status).toBe(400);
  expect(error.key).toBe('invalid_page_token');
  expect(error.message).toMatch(/^The page token is not valid for this query/);
}

describe('page tokens', () => {
  it('round-trip page numbers', () => {
    for (const page of [
      0,
      1,
      2,
      127,
      128,
      300,
      16_383,
      16_384,
      1_000_000,
      2 ** 31,
      Number.MAX_SAFE_INTEGER,
    ]) {
      expect(tokens.verify(QUERY, tokens.sign(QUERY, page))).toBe(page);
    }
  });

  it('are short and URL-safe', () => {
    const token = tokens.sign(QUERY, 1);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThanOrEqual(23);
    expect(encodeURIComponent(token)).toBe(token);
    expect(tokens.sign(QUERY, Number.MAX_SAFE_INTEGER).length).toBeLessThanOrEqual(32);
  });

  it('are deterministic and differ per page and per query', () => {
    expect(tokens.sign(QUERY, 3)).toBe(tokens.sign(QUERY, 3));
    expect(tokens.sign(QUERY, 3)).not.toBe(tokens.sign(QUERY, 4));
    expect(tokens.sign(QUERY, 3)).not.toBe(tokens.sign(OTHER, 3));
  });

  it('do not depend on the case of the query id', () => {
    expect(tokens.verify(QUERY.toUpperCase(), tokens.sign(QUERY, 5))).toBe(5);
  });

  it('are refused for another query', () => {
    expectInvalid(OTHER, tokens.sign(QUERY, 1));
  });

  it('are refused under another secret', () => {
    const other = createPageTokens(randomBytes(32));
    expectInvalid(QUERY, other.sign(QUERY, 1));
  });

  it('are refused when any character is altered', () => {
    const token = tokens.sign(QUERY, 1234);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 0; i < token.length; i++) {
      for (const c of ['A', 'z', '_']) {
        const replacement = token[i] === c ? alphabet[(alphabet.indexOf(c) + 1) % 64] : c;
        const altered = token.slice(0, i) + replacement + token.slice(i + 1);
        expectInvalid(QUERY, altered);
      }
    }
  });

  it('are refused when the page number is swapped under the same MAC', () => {
    const a = Buffer.from(tokens.sign(QUERY, 1), 'base64url');
    a[0] = 2;
    expectInvalid(QUERY, a.toString('base64url'));
  });

  it('are refused truncated or extended', () => {
    const token = tokens.sign(QUERY, 1);
    for (let n = 0; n < token.length; n++) expectInvalid(QUERY, token.slice(0, n));
    expectInvalid(QUERY, token + 'A');
    expectInvalid(QUERY, token + '=');
    expectInvalid(QUERY, 'A' + token);
  });

  it('are refused when garbage, empty or not a string', () => {
    for (const garbage of [
      '',
      ' ',
      'MQ==',
      'MQ',
      'not a token',
      '../../etc/passwd',
      '%00',
      'é',
      'A'.repeat(10_000),
      '\ud800',
      '0',
      '1',
    ]) {
      expectInvalid(QUERY, garbage);
    }
    for (const notString of [undefined, null, 1, {}, []]) expectInvalid(QUERY, notString);
  });

  it('are refused in a non-canonical spelling of the same bytes', () => {
    const token = tokens.sign(QUERY, 1); // 17 bytes: the last character carries 4 unused bits
    const last = token[token.length - 1] as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const variant = token.slice(0, -1) + sibling;
    expect(Buffer.from(variant, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
    expectInvalid(QUERY, variant);
  });

  it('never throw anything but the 400, whatever the query id', () => {
    expectInvalid('', tokens.sign(QUERY, 1));
    expectInvalid(undefined as unknown as string, tokens.sign(QUERY, 1));
  });

  it('are not signed for impossible page numbers', () => {
    for (const page of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => tokens.sign(QUERY, page)).toThrow(RangeError);
    }
  });

  it('need a real secret', () => {
    expect(() => createPageTokens(Buffer.alloc(8))).toThrow(RangeError);
  });

  it('keep working when the caller reuses its secret buffer', () => {
    const secret = randomBytes(32);
    const own = createPageTokens(secret);
    const token = own.sign(QUERY, 9);
    secret.fill(0);
    expect(own.verify(QUERY, token)).toBe(9);
  });
});
