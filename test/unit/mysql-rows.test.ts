/**
 * The text-protocol row decoder (src/connectors/mysql/mysql-rows.ts) on packets built here, framed and
 * split the way a socket delivers them and cut into packets by mysql2's own PacketParser (which also
 * joins rows of 16 MB and more). test/integration/connectors.test.ts runs the same decoder against
 * MariaDB.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FieldPacket } from 'mysql2';
import { describe, expect, it } from 'vitest';
import { JsonText, type CellValue } from '../../src/connectors/connector.js';
import { readTextRows, TextRowDecoder, type RowPacket } from '../../src/connectors/mysql/mysql-rows.js';
import { T } from '../../src/connectors/mysql/mysql-values.js';
import { encodeValue } from '../../src/encoding/row-encoder.js';

// mysql2's packet framing is not among its exports: loaded by file path.
interface PacketParser {
  execute(chunk: Buffer): void;
}
type PacketParserClass = new (onPacket: (packet: RowPacket) => void) => PacketParser;
const require = createRequire(import.meta.url);
const mysql2Dir = path.dirname(require.resolve('mysql2'));
const PacketParser = require(path.join(mysql2Dir, 'lib/packet_parser.js')) as PacketParserClass;

const MAX_PACKET = 0xffffff;
const UNSIGNED = 32;
const ZEROFILL = 64;
const BINARY = 63;
const UTF8MB4 = 224;

/** A column definition as mysql2 gives it (only what the decoder reads). */
function field(
  columnType: number,
  options: {
    flags?: number;
    decimals?: number;
    characterSet?: number;
    encoding?: string;
    extendedFormat?: string;
  } = {},
): FieldPacket {
  const characterSet = options.characterSet ?? UTF8MB4;
  return {
    name: `c${columnType}`,
    columnType,
    type: columnType,
    flags: options.flags ?? 0,
    decimals: options.decimals ?? 0,
    characterSet,
    encoding: options.encoding ?? (characterSet === BINARY ? 'binary' : 'utf8'),
    extendedFormat: options.extendedFormat,
  } as FieldPacket;
}

type Cell = string | Buffer | null | { wide: string | Buffer };

/** A length-encoded string; `wide` forces the 8-byte length form (0xfe) whatever the length. */
function lenenc(cell: Cell): Buffer {
  if (cell === null) return Buffer.from([0xfb]);
  const wide = typeof cell === 'object' && !Buffer.isBuffer(cell);
  const raw = wide ? cell.wide : cell;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const n = bytes.length;
  let head: Buffer;
  if (wide || n >= 0x1000000) {
    head = Buffer.alloc(9);
    head[0] = 0xfe;
    head.writeUInt32LE(n % 0x1_0000_0000, 1);
    head.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 5);
  } else if (n < 0xfb) head = Buffer.from([n]);
  else if (n < 0x10000) head = Buffer.from([0xfc, n & 0xff, n >> 8]);
  else head = Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  return Buffer.concat([head, bytes]);
}

/** The wire bytes of one row: its payload in packets of at most 16 MB - 1 (an exact multiple gets an empty one). */
function frame(payload: Buffer, firstSequence: number): { bytes: Buffer; next: number } {
  const parts: Buffer[] = [];
  let sequence = firstSequence;
  let at = 0;
  for (;;) {
    const n = Math.min(MAX_PACKET, payload.length - at);
    const header = Buffer.alloc(4);
    header.writeUIntLE(n, 0, 3);
    header[3] = sequence++ & 0xff;
    parts.push(header, payload.subarray(at, at + n));
    at += n;
    if (n < MAX_PACKET) break;
  }
  return { bytes: Buffer.concat(parts), next: sequence };
}

/** Decodes `rows` through mysql2's PacketParser, the stream cut at `cuts` (byte counts, repeated). */
function decodeRows(fields: FieldPacket[], rows: Cell[][], cuts: number[] = []): CellValue[][] {
  const decoder = new TextRowDecoder(fields);
  const decoded: CellValue[][] = [];
  const parser = new PacketParser((packet) => decoded.push(decoder.decode(packet)));
  let sequence = 0;
  const stream = Buffer.concat(
    rows.map((row) => {
      const framed = frame(Buffer.concat(row.map(lenenc)), sequence);
      sequence = framed.next;
      return framed.bytes;
    }),
  );
  if (cuts.length === 0) parser.execute(stream);
  else {
    let at = 0;
    for (let i = 0; at < stream.length; i++) {
      const n = cuts[i % cuts.length]!;
      parser.execute(stream.subarray(at, at + n));
      at += n;
    }
  }
  return decoded;
}

function decodeOne(f: FieldPacket, cell: Cell): CellValue {
  const rows = decodeRows([f], [[cell]]);
  expect(rows).toHaveLength(1);
  return rows[0]![0]!;
}

/** A packet as PacketParser hands it over, for malformed payloads. */
function packetOf(payload: Buffer): RowPacket {
  const buffer = Buffer.concat([Buffer.alloc(4), payload]);
  return {
    buffer,
    offset: 4,
    end: buffer.length,
    isEOF: () => false,
    readLengthCodedString: () => null,
  };
}

describe('TextRowDecoder: every type of the value table', () => {
  const cases: {
    name: string;
    field: FieldPacket;
    wire: Cell;
    value: CellValue;
    json: string;
  }[] = [
    { name: 'TINYINT', field: field(T.TINY), wire: '-128', value: -128, json: '-128' },
    { name: 'SMALLINT', field: field(T.SHORT), wire: '32767', value: 32767, json: '32767' },
    { name: 'MEDIUMINT', field: field(T.INT24), wire: '-8388608', value: -8388608, json: '-8388608' },
    { name: 'INT', field: field(T.LONG), wire: '-2147483648', value: -2147483648, json: '-2147483648' },
    {
      name: 'INT UNSIGNED',
      field: field(T.LONG, { flags: UNSIGNED }),
      wire: '4294967295',
      value: 4294967295,
      json: '4294967295',
    },
    {
      name: 'INT ZEROFILL',
      field: field(T.LONG, { flags: UNSIGNED | ZEROFILL }),
      wire: '0000000042',
      value: 42,
      json: '42',
    },
    { name: 'YEAR', field: field(T.YEAR), wire: '2026', value: 2026, json: '2026' },
    { name: 'YEAR zero', field: field(T.YEAR), wire: '0000', value: 0, json: '0' },
    {
      name: 'BIGINT',
      field: field(T.LONGLONG),
      wire: '-9223372036854775808',
      value: new JsonText('-9223372036854775808'),
      json: '-9223372036854775808',
    },
    {
      name: 'BIGINT UNSIGNED',
      field: field(T.LONGLONG, { flags: UNSIGNED }),
      wire: '18446744073709551615',
      value: new JsonText('18446744073709551615'),
      json: '18446744073709551615',
    },
    {
      name: 'BIGINT ZEROFILL',
      field: field(T.LONGLONG, { flags: UNSIGNED | ZEROFILL }),
      wire: '00000000000000000042',
      value: new JsonText('42'),
      json: '42',
    },
    {
      name: 'BIGINT ZEROFILL zero',
      field: field(T.LONGLONG, { flags: UNSIGNED | ZEROFILL }),
      wire: '00000000000000000000',
      value: new JsonText('0'),
      json: '0',
    },
    { name: 'FLOAT', field: field(T.FLOAT), wire: '1.1', value: 1.1, json: '1.1' },
    {
      name: 'FLOAT exponent',
      field: field(T.FLOAT),
      wire: '3.40282e38',
      value: 3.40282e38,
      json: '3.40282e+38',
    },
    { name: 'DOUBLE', field: field(T.DOUBLE), wire: '0.1', value: 0.1, json: '0.1' },
    {
      // 16 significant digits above 2^53: mysql2's own parser is one ulp off here (…428).
      name: 'DOUBLE, exact to the last digit',
      field: field(T.DOUBLE),
      wire: '90.28571428571429',
      value: 90.28571428571429,
      json: '90.28571428571429',
    },
    {
      name: 'DOUBLE exponent',
      field: field(T.DOUBLE),
      wire: '-1.5e-300',
      value: -1.5e-300,
      json: '-1.5e-300',
    },
    {
      name: 'DECIMAL',
      field: field(T.NEWDECIMAL, { decimals: 6 }),
      wire: '12345678901234567890.000001',
      value: new JsonText('"12345678901234567890.000001"'),
      json: '"12345678901234567890.000001"',
    },
    {
      name: 'DECIMAL (old type)',
      field: field(T.DECIMAL),
      wire: '-0.10',
      value: new JsonText('"-0.10"'),
      json: '"-0.10"',
    },
    {
      name: 'DATE',
      field: field(T.DATE),
      wire: '2026-01-02',
      value: new JsonText('"2026-01-02"'),
      json: '"2026-01-02"',
    },
    {
      name: 'DATE zero',
      field: field(T.DATE),
      wire: '0000-00-00',
      value: new JsonText('"0000-00-00"'),
      json: '"0000-00-00"',
    },
    {
      name: 'DATETIME',
      field: field(T.DATETIME),
      wire: '2026-01-02 03:04:05',
      value: new JsonText('"2026-01-02T03:04:05"'),
      json: '"2026-01-02T03:04:05"',
    },
    {
      name: 'DATETIME(6)',
      field: field(T.DATETIME, { decimals: 6 }),
      wire: '2026-01-02 03:04:05.123456',
      value: new JsonText('"2026-01-02T03:04:05.123456"'),
      json: '"2026-01-02T03:04:05.123456"',
    },
    {
      name: 'DATETIME zero keeps the server text',
      field: field(T.DATETIME),
      wire: '0000-00-00 00:00:00',
      value: '0000-00-00 00:00:00',
      json: '"0000-00-00 00:00:00"',
    },
    {
      name: 'TIMESTAMP(3) in UTC',
      field: field(T.TIMESTAMP, { decimals: 3 }),
      wire: '2026-01-01 10:00:00.123',
      value: new JsonText('"2026-01-01T10:00:00.123Z"'),
      json: '"2026-01-01T10:00:00.123Z"',
    },
    {
      name: 'TIMESTAMP with a short fraction takes the general path',
      field: field(T.TIMESTAMP, { decimals: 3 }),
      wire: '2026-01-01 10:00:00.1',
      value: '2026-01-01T10:00:00.100Z',
      json: '"2026-01-01T10:00:00.100Z"',
    },
    {
      name: 'TIME',
      field: field(T.TIME),
      wire: '-838:59:59',
      value: new JsonText('"-838:59:59"'),
      json: '"-838:59:59"',
    },
    {
      name: 'TIME(2)',
      field: field(T.TIME, { decimals: 2 }),
      wire: '12:00:00.00',
      value: new JsonText('"12:00:00.00"'),
      json: '"12:00:00.00"',
    },
    {
      name: 'JSON (MySQL, binary character set)',
      field: field(T.JSON, { characterSet: BINARY }),
      wire: '{"a": [1, 2.50, 12345678901234567890], "é": "😀"}',
      value: new JsonText('{"a": [1, 2.50, 12345678901234567890], "é": "😀"}'),
      json: '{"a": [1, 2.50, 12345678901234567890], "é": "😀"}',
    },
    {
      name: 'JSON (MariaDB, LONGTEXT marked json)',
      field: field(T.BLOB, { extendedFormat: 'json' }),
      wire: '{"k": 1}',
      value: new JsonText('{"k": 1}'),
      json: '{"k": 1}',
    },
    {
      name: 'BLOB',
      field: field(T.BLOB, { characterSet: BINARY }),
      wire: Buffer.from([0, 255, 16]),
      value: new Uint8Array([0, 255, 16]),
      json: '"AP8Q"',
    },
    {
      name: 'VARBINARY',
      field: field(T.VAR_STRING, { characterSet: BINARY }),
      wire: Buffer.from([1, 2]),
      value: new Uint8Array([1, 2]),
      json: '"AQI="',
    },
    {
      name: 'BINARY',
      field: field(T.STRING, { characterSet: BINARY }),
      wire: Buffer.from([10, 11]),
      value: new Uint8Array([10, 11]),
      json: '"Cgs="',
    },
    {
      name: 'GEOMETRY as its bytes',
      field: field(T.GEOMETRY, { characterSet: BINARY }),
      wire: Buffer.from('000000000101000000000000000000f03f0000000000000040', 'hex'),
      value: new Uint8Array(Buffer.from('000000000101000000000000000000f03f0000000000000040', 'hex')),
      json: '"AAAAAAEBAAAAAAAAAAAA8D8AAAAAAAAAQA=="',
    },
    {
      name: 'TEXT, plain ASCII',
      field: field(T.BLOB),
      wire: "it's",
      value: new JsonText('"it\'s"'),
      json: '"it\'s"',
    },
    {
      name: 'TEXT, non-ASCII',
      field: field(T.BLOB),
      wire: 'héllo 😀',
      value: 'héllo 😀',
      json: '"héllo 😀"',
    },
    {
      name: 'VARCHAR with quote, backslash and control characters',
      field: field(T.VAR_STRING),
      wire: 'a"b\\c\td\u0001',
      value: 'a"b\\c\td\u0001',
      json: '"a\\"b\\\\c\\td\\u0001"',
    },
    { name: 'VARCHAR empty', field: field(T.VAR_STRING), wire: '', value: new JsonText('""'), json: '""' },
    {
      name: 'VARCHAR with DEL',
      field: field(T.VARCHAR),
      wire: 'x\u007f',
      value: new JsonText('"x\u007f"'),
      json: '"x\u007f"',
    },
    { name: 'CHAR', field: field(T.STRING), wire: 'ab', value: new JsonText('"ab"'), json: '"ab"' },
    {
      name: 'ENUM',
      field: field(T.STRING, { flags: 256 }),
      wire: 'b',
      value: new JsonText('"b"'),
      json: '"b"',
    },
    {
      name: 'SET',
      field: field(T.STRING, { flags: 2048 }),
      wire: 'x,y',
      value: new JsonText('"x,y"'),
      json: '"x,y"',
    },
    {
      name: 'text in another character set (cp1252), decoded by mysql2',
      field: field(T.VAR_STRING, { characterSet: 8, encoding: 'cp1252' }),
      wire: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x80]),
      value: 'café€',
      json: '"café€"',
    },
    { name: 'BIT(10)', field: field(T.BIT), wire: Buffer.from([0x02, 0xaa]), value: 682, json: '682' },
    {
      name: 'BIT(64)',
      field: field(T.BIT),
      wire: Buffer.alloc(8, 0xff),
      value: 18446744073709551615n,
      json: '18446744073709551615',
    },
    {
      name: 'VECTOR',
      field: field(T.VECTOR, { characterSet: BINARY }),
      wire: Buffer.from(new Float32Array([1.5, -2]).buffer),
      value: [1.5, -2],
      json: '[1.5,-2]',
    },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.json}`, () => {
      const value = decodeOne(c.field, c.wire);
      expect(value).toEqual(c.value);
      expect(encodeValue(value)).toBe(c.json);
    });
  }

  it('many rows in one chunk and across chunks, each read once', () => {
    const fields = cases.map((c) => c.field);
    const wire = cases.map((c) => c.wire);
    const many = Array.from({ length: 50 }, () => wire);
    const expected = many.map(() => cases.map((c) => c.value));
    expect(decodeRows(fields, many)).toEqual(expected);
    expect(decodeRows(fields, many, [100, 37, 4000])).toEqual(expected);
  });

  it('NULL in every column, and the NULL type', () => {
    const fields = [...cases.map((c) => c.field), field(T.NULL, { characterSet: BINARY })];
    const [row] = decodeRows(fields, [fields.map(() => null)]);
    expect(row).toEqual(fields.map(() => null));
  });

  it('a row of every type at once, twice, the stream cut at every byte', () => {
    const fields = cases.map((c) => c.field);
    const wire = cases.map((c) => c.wire);
    const rows = decodeRows(fields, [wire, wire], [1]);
    expect(rows).toEqual([cases.map((c) => c.value), cases.map((c) => c.value)]);
  });
});

describe('TextRowDecoder: lengths and packets', () => {
  const text = field(T.VAR_STRING);
  const blob = field(T.BLOB, { characterSet: BINARY });

  it('reads 1-byte, 2-byte (251+), 3-byte (65536+) and 8-byte lengths', () => {
    for (const n of [0, 250, 251, 252, 0xffff, 0x10000, 70_000]) {
      const value = 'x'.repeat(n);
      expect(decodeOne(text, value), `${n} bytes`).toEqual(new JsonText(`"${value}"`));
    }
    expect(decodeOne(text, { wide: 'short' })).toEqual(new JsonText('"short"'));
    expect(decodeOne(blob, { wide: Buffer.from([1, 2, 3]) })).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('decodes long rows cell by cell, the same as short ones', () => {
    const fields = [field(T.LONGLONG), text, field(T.BLOB), field(T.DATETIME), field(T.NEWDECIMAL)];
    const long = 'é'.repeat(5000);
    const [row] = decodeRows(fields, [['42', 'a'.repeat(9000), long, '2026-01-02 03:04:05', '1.50']]);
    expect(row).toEqual([
      new JsonText('42'),
      new JsonText(`"${'a'.repeat(9000)}"`),
      long,
      new JsonText('"2026-01-02T03:04:05"'),
      new JsonText('"1.50"'),
    ]);
  });

  it('a row larger than one 16 MB packet, split at odd boundaries', () => {
    const fields = [field(T.LONG), blob, text, field(T.LONG)];
    const bytes = Buffer.alloc(MAX_PACKET + 1000, 7);
    const rows = decodeRows(
      fields,
      [
        ['1', bytes, 'after', '2'],
        ['3', null, 'ünï', null],
      ],
      [65_536 + 13, 3, 1_000_003],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]![0]).toBe(1);
    expect(Buffer.from(rows[0]![1] as Uint8Array).equals(bytes)).toBe(true);
    expect(rows[0]!.slice(2)).toEqual([new JsonText('"after"'), 2]);
    expect(rows[1]).toEqual([3, null, 'ünï', null]);
  });

  it('a payload of exactly 16 MB - 1 bytes (followed by an empty packet)', () => {
    const fields = [blob];
    // lenenc of n bytes takes 4 bytes of header (0xfd + 3).
    const bytes = Buffer.alloc(MAX_PACKET - 4, 1);
    const [row] = decodeRows(fields, [[bytes]], [4096]);
    expect((row![0] as Uint8Array).length).toBe(bytes.length);
  });

  it('copies bytes: a cell never points into the driver buffer', () => {
    const decoder = new TextRowDecoder([blob]);
    const packet = packetOf(lenenc(Buffer.from([1, 2, 3])));
    const cell = decoder.decode(packet)[0] as Uint8Array;
    packet.buffer.fill(0);
    expect(Array.from(cell)).toEqual([1, 2, 3]);
  });

  it('refuses packets that do not hold one value per column', () => {
    const decoder = new TextRowDecoder([text, text]);
    expect(() => decoder.decode(packetOf(lenenc('a')))).toThrow(/ended before column 2 of 2/);
    expect(() => decoder.decode(packetOf(Buffer.concat([lenenc('a'), Buffer.from([5, 0x61])])))).toThrow(
      /runs past the end/,
    );
    expect(() => decoder.decode(packetOf(Buffer.concat([lenenc('a'), lenenc('b'), lenenc('c')])))).toThrow(
      /more than its 2 columns/,
    );
    expect(() => decoder.decode(packetOf(Buffer.from([0xff, 0, 0])))).toThrow(/length byte 0xff/);
  });
});

describe('readTextRows', () => {
  it('takes over the row state of a command and leaves EOF packets to mysql2', () => {
    const seen: string[] = [];
    class Query {
      fieldsEOF(): unknown {
        return (this as unknown as { row: unknown }).row;
      }
      row(packet: RowPacket): unknown {
        seen.push(packet.isEOF() ? 'eof' : 'mysql2 row');
        return 'next state';
      }
    }
    const command = new Query();
    const rows: number[] = [];
    readTextRows(command, (packet) => rows.push(packet.offset));
    const state = command.fieldsEOF() as (this: Query, packet: RowPacket, connection: unknown) => unknown;
    const row = (offset: number, eof = false): RowPacket => ({
      ...packetOf(Buffer.alloc(0)),
      offset,
      isEOF: () => eof,
    });
    expect(state.call(command, row(1), undefined)).toBe(state);
    expect(state.call(command, row(2), undefined)).toBe(state);
    expect(state.call(command, row(3, true), undefined)).toBe('next state');
    expect(rows).toEqual([1, 2]);
    expect(seen).toEqual(['eof']);
  });
});
