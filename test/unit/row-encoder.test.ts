import { describe, expect, it } from 'vitest';
import { JsonText } from '../../src/connectors/connector.js';
import type { CellValue } from '../../src/connectors/connector.js';
import { UnsupportedValueError, createRowEncoder, encodeValue } from '../../src/encoding/row-encoder.js';

const one = (value: CellValue): string => createRowEncoder(['v'])([value]);

describe('createRowEncoder: row shape', () => {
  it('writes keys in column order', () => {
    const encode = createRowEncoder(['name', 'age', '1', '0']);
    // Text, not JSON.parse: JS objects reorder integer-like keys.
    expect(encode(['Ada', 36, true, null])).toBe('{"name":"Ada","age":36,"1":true,"0":null}');
  });

  it('writes {} for a result without columns', () => {
    expect(createRowEncoder([])([])).toBe('{}');
  });

  it('escapes key names once, correctly', () => {
    const names = ['quote"d', 'back\\slash', 'new\nline', '', 'tab\t', 'é€😀', '\ud800lone', '__proto__'];
    const encode = createRowEncoder(names);
    const text = encode(names.map((_, i) => i));
    expect(text).toBe(
      '{"quote\\"d":0,"back\\\\slash":1,"new\\nline":2,"":3,"tab\\t":4,"é€😀":5,"\\ud800lone":6,"__proto__":7}',
    );
    const parsed = JSON.parse(text) as Record<string, number>;
    expect(Object.keys(parsed)).toEqual(names);
    names.forEach((name, i) => expect(parsed[name]).toBe(i));
  });

  it('can be reused for many rows', () => {
    const encode = createRowEncoder(['a', 'b']);
    expect(encode([1, 'x'])).toBe('{"a":1,"b":"x"}');
    expect(encode([2, 'y'])).toBe('{"a":2,"b":"y"}');
  });

  it('refuses a row whose length differs from the column count', () => {
    const encode = createRowEncoder(['a', 'b']);
    expect(() => encode([1])).toThrow(/1 values but the result has 2 columns/);
    expect(() => encode([1, 2, 3])).toThrow(/3 values/);
    expect(() => createRowEncoder([])([1])).toThrow(/0 columns/);
  });
});

describe('createRowEncoder: values', () => {
  it('null and booleans', () => {
    expect(one(null)).toBe('{"v":null}');
    expect(one(true)).toBe('{"v":true}');
    expect(one(false)).toBe('{"v":false}');
  });

  it('finite numbers as the shortest JSON number', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [-0, '0'],
      [42, '42'],
      [-7, '-7'],
      [0.1, '0.1'],
      [1.5e300, '1.5e+300'],
      [1e21, '1e+21'],
      [1e-7, '1e-7'],
      [Number.MAX_VALUE, '1.7976931348623157e+308'],
      [Number.MIN_VALUE, '5e-324'],
      [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    ];
    for (const [value, text] of cases) {
      const row = one(value);
      expect(row).toBe(`{"v":${text}}`);
      expect((JSON.parse(row) as { v: number }).v).toBe(value === 0 ? 0 : value);
    }
  });

  it('NaN and infinities as strings', () => {
    expect(one(Number.NaN)).toBe('{"v":"NaN"}');
    expect(one(Number.POSITIVE_INFINITY)).toBe('{"v":"Infinity"}');
    expect(one(Number.NEGATIVE_INFINITY)).toBe('{"v":"-Infinity"}');
  });

  it('bigints digit for digit', () => {
    const encode = createRowEncoder(['max', 'min', 'umax', 'beyond', 'zero']);
    const text = encode([
      9223372036854775807n,
      -9223372036854775808n,
      18446744073709551615n,
      123456789012345678901234567890n,
      0n,
    ]);
    expect(text).toBe(
      '{"max":9223372036854775807,"min":-9223372036854775808,"umax":18446744073709551615,' +
        '"beyond":123456789012345678901234567890,"zero":0}',
    );
    expect(() => JSON.parse(text) as unknown).not.toThrow();
  });

  it('JsonText spliced in as is', () => {
    expect(one(new JsonText('9223372036854775807'))).toBe('{"v":9223372036854775807}');
    expect(one(new JsonText('18446744073709551615'))).toBe('{"v":18446744073709551615}');
    expect(one(new JsonText('9007199254740993'))).toBe('{"v":9007199254740993}');
    const json = '{"a": [1, 2.50, {"b": null}], "s": "x\\"y"}';
    const row = one(new JsonText(json));
    expect(row).toBe(`{"v":${json}}`);
    expect(JSON.parse(row)).toEqual({ v: { a: [1, 2.5, { b: null }], s: 'x"y' } });
  });

  it('refuses empty JsonText, which would break the page', () => {
    expect(() => one(new JsonText(''))).toThrow(/empty/);
  });

  it('strings: plain, emoji, quotes, backslashes', () => {
    for (const s of [
      '',
      'Ada',
      'héllo wörld',
      '日本語',
      '😀👍🏽',
      'say "hi"',
      'C:\\dir\\file',
      '12345678901234567890.000001',
    ]) {
      const row = one(s);
      expect(row).toBe(`{"v":${JSON.stringify(s)}}`);
      expect((JSON.parse(row) as { v: string }).v).toBe(s);
    }
  });

  it('strings: control characters escaped', () => {
    expect(one('a\u0000b')).toBe('{"v":"a\\u0000b"}');
    expect(one('\n\r\t\b\f')).toBe('{"v":"\\n\\r\\t\\b\\f"}');
    expect(one('\u001f\u007f')).toBe('{"v":"\\u001f\u007f"}');
    const all = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');
    expect((JSON.parse(one(all)) as { v: string }).v).toBe(all);
  });

  it('strings: lone surrogates escaped so the text is well-formed', () => {
    expect(one('\ud800')).toBe('{"v":"\\ud800"}');
    expect(one('x\udfffy')).toBe('{"v":"x\\udfffy"}');
    expect(one('\ude00\ud83d')).toBe('{"v":"\\ude00\\ud83d"}');
    // A proper pair stays a pair.
    expect(one('\ud83d\ude00')).toBe('{"v":"😀"}');
    const row = one('a\ud800b');
    expect(Buffer.from(row, 'utf8').toString('utf8')).toBe(row);
    expect((JSON.parse(row) as { v: string }).v).toBe('a\ud800b');
  });

  it('strings: identical to JSON.stringify for every UTF-16 code unit', () => {
    const mismatches: number[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      const s = `a${String.fromCharCode(c)}z`;
      if (encodeValue(s) !== JSON.stringify(s)) mismatches.push(c);
    }
    expect(mismatches).toEqual([]);
    expect(encodeValue('\u2028\u2029')).toBe(JSON.stringify('\u2028\u2029'));
  });

  it('binary as base64, honouring the view offset', () => {
    expect(one(new Uint8Array([]))).toBe('{"v":""}');
    expect(one(new Uint8Array([0, 1, 2, 253, 254, 255]))).toBe('{"v":"AAEC/f7/"}');
    expect(one(Buffer.from('hello'))).toBe('{"v":"aGVsbG8="}');
    const backing = new Uint8Array([9, 9, 104, 105, 9]);
    expect(one(backing.subarray(2, 4))).toBe('{"v":"aGk="}');
  });

  it('arrays recursively, with the same value mapping', () => {
    const value: CellValue = [
      1,
      null,
      'two',
      [true, [], [3n, Number.NaN]],
      new Uint8Array([255]),
      new JsonText('{"k":1}'),
      -0,
    ];
    const row = one(value);
    expect(row).toBe('{"v":[1,null,"two",[true,[],[3,"NaN"]],"/w==",{"k":1},0]}');
    expect(JSON.parse(row)).toEqual({ v: [1, null, 'two', [true, [], [3, 'NaN']], '/w==', { k: 1 }, 0] });
    expect(one([])).toBe('{"v":[]}');
    expect(one([[[]]])).toBe('{"v":[[[]]]}');
  });

  it('a full row of every kind parses back', () => {
    const encode = createRowEncoder(['n', 'b', 'i', 'f', 'big', 's', 'bin', 'json', 'arr']);
    const row = encode([
      null,
      true,
      7,
      2.5,
      9223372036854775807n,
      'x😀\u0001',
      new Uint8Array([1]),
      new JsonText('[1,"a"]'),
      ['a', ['b']],
    ]);
    expect(JSON.parse(row)).toEqual({
      n: null,
      b: true,
      i: 7,
      f: 2.5,
      big: Number(9223372036854775807n), // JSON.parse rounds it; the exact text is checked in "bigints digit for digit"
      s: 'x😀\u0001',
      bin: 'AQ==',
      json: [1, 'a'],
      arr: ['a', ['b']],
    });
  });
});

describe('createRowEncoder: values outside CellValue', () => {
  const bad = (value: unknown): CellValue => value as CellValue;

  it('throws naming the JS type and the column', () => {
    const encode = createRowEncoder(['ok', 'when']);
    expect(() => encode([1, bad(new Date(0))])).toThrow(UnsupportedValueError);
    expect(() => encode([1, bad(new Date(0))])).toThrow(
      'Cannot encode a value of JS type object (Date) in column "when"',
    );
    expect(() => encode([bad(undefined), 1])).toThrow('JS type undefined in column "ok"');
    expect(() => encode([bad(Symbol('s')), 1])).toThrow('JS type symbol');
    expect(() => encode([bad(() => 1), 1])).toThrow('JS type function');
    expect(() => encode([bad({ a: 1 }), 1])).toThrow('JS type object (Object)');
    expect(() => encode([bad(Object.create(null)), 1])).toThrow('JS type object in column');
  });

  it('names the column for a bad value nested in an array', () => {
    const encode = createRowEncoder(['list']);
    expect(() => encode([bad([1, [new Map()]])])).toThrow('JS type object (Map) in column "list"');
  });

  it('encodeValue throws without a column', () => {
    expect(() => encodeValue(bad(undefined))).toThrow(
      /^Cannot encode a value of JS type undefined as JSON\.$/,
    );
  });
});
