import {
  AsyncByteQueue,
  Binary,
  Bool,
  type Data,
  type DataType,
  DateDay,
  Decimal,
  Field,
  Float64,
  Int64,
  List,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  TimestampMicrosecond,
  Uint64,
  Utf8,
} from 'apache-arrow';
import { planColumns, type ColumnKind, type PlannedColumn } from './column-types.js';
import {
  arrayItems,
  decodeString,
  isStringToken,
  pageRows,
  valueText,
  type StoredResult,
} from './stored-rows.js';

/**
 * Arrow IPC, stream format: one record batch per stored page, with the column types of planColumns
 * (column-types.ts): int64, uint64, decimal128, float64, bool, date32 (days), timestamp[us] (UTC for
 * time zone aware columns), binary, utf8 (JSON as its text) and lists. Buffers are built straight from
 * the values' stored text (no JS double in between for integers and decimals), and each batch's bytes go
 * out before the next page is read.
 */
export async function* arrowChunks(result: StoredResult): AsyncGenerator<Uint8Array> {
  const columns = await planColumns(result);
  const schema = new Schema(columns.map((c) => new Field(c.name, arrowType(c.kind), true)));
  const sink = new ChunkSink();
  const writer = new RecordBatchStreamWriter({ autoDestroy: false });
  writer.reset(sink, schema);
  yield* sink.drain();
  for await (const page of result.pages()) {
    const batch = pageBatch(schema, columns, page);
    if (batch.numRows === 0) continue;
    writer.write(batch);
    yield* sink.drain();
  }
  writer.finish();
  yield* sink.drain();
}

/** Collects what the writer writes, to be handed out (and forgotten) after each batch. */
class ChunkSink extends AsyncByteQueue<Uint8Array> {
  private chunks: Uint8Array[] = [];

  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.chunks.push(value);
  }

  /** What was written since the last drain, as one buffer (the writer writes many small pieces). */
  drain(): Uint8Array[] {
    const out = this.chunks;
    this.chunks = [];
    return out.length === 0 ? [] : [Buffer.concat(out)];
  }
}

function arrowType(kind: ColumnKind): DataType {
  switch (kind.kind) {
    case 'int64':
      return new Int64();
    case 'uint64':
      return new Uint64();
    case 'decimal':
      return new Decimal(kind.scale, kind.precision, 128);
    case 'float64':
      return new Float64();
    case 'bool':
      return new Bool();
    case 'date':
      return new DateDay();
    case 'timestamp':
      return new TimestampMicrosecond();
    case 'timestamptz':
      return new TimestampMicrosecond('UTC');
    case 'binary':
      return new Binary();
    case 'json':
    case 'string':
      return new Utf8();
    case 'list':
      return new List(new Field('item', arrowType(kind.item), true));
  }
}

function pageBatch(schema: Schema, columns: PlannedColumn[], page: Buffer): RecordBatch {
  const cells: string[][] = columns.map(() => []);
  let rows = 0;
  for (const row of pageRows(page, columns.length)) {
    for (let i = 0; i < columns.length; i++) cells[i]!.push(row[i]!);
    rows++;
  }
  const children = columns.map((c, i) => columnData(c.kind, schema.fields[i]!.type as DataType, cells[i]!));
  const struct = makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

/** One column's Arrow data from its values' raw JSON text. */
function columnData(kind: ColumnKind, type: DataType, raws: string[]): Data {
  const length = raws.length;
  const validity = new Uint8Array((length + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < length; i++) {
    if (raws[i] === 'null') nullCount++;
    else validity[i >> 3]! |= 1 << (i & 7);
  }
  const base = { length, nullCount, nullBitmap: nullCount > 0 ? validity : undefined };
  switch (kind.kind) {
    case 'int64': {
      const data = new BigInt64Array(length);
      raws.forEach((raw, i) => raw !== 'null' && (data[i] = BigInt(raw)));
      return makeData({ ...base, type: type as Int64, data });
    }
    case 'uint64': {
      const data = new BigUint64Array(length);
      raws.forEach((raw, i) => raw !== 'null' && (data[i] = BigInt(raw)));
      return makeData({ ...base, type: type as Uint64, data });
    }
    case 'decimal': {
      const data = new Uint32Array(length * 4);
      raws.forEach((raw, i) => raw !== 'null' && writeDecimal128(data, i, unscaled(raw, kind.scale)));
      return makeData({ ...base, type: type as Decimal, data });
    }
    case 'float64': {
      const data = new Float64Array(length);
      raws.forEach(
        (raw, i) => raw !== 'null' && (data[i] = Number(isStringToken(raw) ? decodeString(raw) : raw)),
      );
      return makeData({ ...base, type: type as Float64, data });
    }
    case 'bool': {
      const data = new Uint8Array((length + 7) >> 3);
      raws.forEach((raw, i) => raw === 'true' && (data[i >> 3]! |= 1 << (i & 7)));
      return makeData({ ...base, type: type as Bool, data });
    }
    case 'date': {
      const data = new Int32Array(length);
      raws.forEach((raw, i) => raw !== 'null' && (data[i] = epochDays(raw, 1)));
      return makeData({ ...base, type: type as DateDay, data });
    }
    case 'timestamp':
    case 'timestamptz': {
      const data = new BigInt64Array(length);
      raws.forEach((raw, i) => raw !== 'null' && (data[i] = epochMicros(raw)));
      return makeData({ ...base, type: type as TimestampMicrosecond, data });
    }
    case 'binary': {
      const values = raws.map((raw) => (raw === 'null' ? EMPTY : Buffer.from(decodeString(raw), 'base64')));
      return makeData({ ...base, type: type as Binary, ...variableWidth(values) });
    }
    case 'json':
    case 'string': {
      const values = raws.map((raw) => {
        const text = kind.kind === 'json' ? raw : valueText(raw);
        return raw === 'null' || text === null ? EMPTY : Buffer.from(text, 'utf8');
      });
      return makeData({ ...base, type: type as Utf8, ...variableWidth(values) });
    }
    case 'list': {
      const listType = type as List;
      const valueOffsets = new Int32Array(length + 1);
      const items: string[] = [];
      raws.forEach((raw, i) => {
        if (raw !== 'null') items.push(...arrayItems(raw));
        valueOffsets[i + 1] = items.length;
      });
      const child = columnData(kind.item, listType.children[0]!.type as DataType, items);
      return makeData({ ...base, type: listType, valueOffsets, child });
    }
  }
}

const EMPTY = new Uint8Array(0);

function variableWidth(values: Uint8Array[]): { valueOffsets: Int32Array; data: Uint8Array } {
  const valueOffsets = new Int32Array(values.length + 1);
  let total = 0;
  values.forEach((v, i) => {
    total += v.byteLength;
    valueOffsets[i + 1] = total;
  });
  const data = new Uint8Array(total);
  values.forEach((v, i) => data.set(v, valueOffsets[i]!));
  return { valueOffsets, data };
}

/** A decimal's digits as an integer scaled by 10^scale (the value fits: checked by planColumns). */
function unscaled(raw: string, scale: number): bigint {
  const text = isStringToken(raw) ? decodeString(raw) : raw;
  const [whole, fraction = ''] = text.split('.');
  const negative = whole!.startsWith('-');
  const digits = (negative ? whole!.slice(1) : whole!) + fraction.padEnd(scale, '0');
  const value = BigInt(digits);
  return negative ? -value : value;
}

const MASK_32 = 0xffffffffn;

/** Two's complement, 128 bits, little-endian 32-bit words: Arrow's Decimal128 layout. */
function writeDecimal128(words: Uint32Array, index: number, value: bigint): void {
  let v = BigInt.asUintN(128, value);
  for (let w = 0; w < 4; w++) {
    words[index * 4 + w] = Number(v & MASK_32);
    v >>= 32n;
  }
}

/** Days since 1970-01-01 of `"YYYY-MM-DD…"` (proleptic Gregorian; `at` is where the year starts). */
function epochDays(raw: string, at: number): number {
  const y = Number(raw.slice(at, at + 4));
  const m = Number(raw.slice(at + 5, at + 7));
  const d = Number(raw.slice(at + 8, at + 10));
  // Howard Hinnant's days_from_civil.
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Microseconds since the epoch of `"YYYY-MM-DDTHH:MM:SS[.ffffff][Z]"` (UTC when it ends in Z). */
function epochMicros(raw: string): bigint {
  const days = epochDays(raw, 1);
  const seconds =
    Number(raw.slice(12, 14)) * 3600 + Number(raw.slice(15, 17)) * 60 + Number(raw.slice(18, 20));
  const dot = raw.charCodeAt(20) === 46 ? raw.slice(21).replace(/Z?"$/, '') : '';
  const micros = dot === '' ? 0 : Number(dot.padEnd(6, '0'));
  return (BigInt(days) * 86_400n + BigInt(seconds)) * 1_000_000n + BigInt(micros);
}
