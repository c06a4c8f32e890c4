/**
 * Cuts a stream of encoded rows into pages (DESIGN.md "Life of a query" step 3). Each page is the exact
 * UTF-8 bytes of a JSON array `[row,row,...]`, so the API can splice it into the response envelope
 * without parsing it again.
 *
 * A page closes at `maxRows` rows or when the next row would take the page's bytes (brackets and
 * commas included) past `maxBytes`, whichever comes first, so no page ever exceeds `maxBytes`: a row
 * too large for a page of its own fails the writer (RowTooLargeError), as does a result whose pages
 * would add up to more than `maxResultBytes` (ResultTooLargeError, before that page is stored). A
 * result with no rows has no pages at all (the API serves `results: []`).
 */

/**
 * Stores one finished page. The writer lets at most `writesInFlight` of these run at once and waits
 * for one to end before cutting another (back-pressure).
 */
export type PageSink = (pageIndex: number, bytes: Buffer, rowCount: number) => Promise<void>;

export interface PageWriterOptions {
  maxRows: number;
  maxBytes: number;
  sink: PageSink;
  /**
   * Page writes that may run while the writer takes more rows (default 1: each push that closes a
   * page settles only once the sink has stored it). With more, storing a page overlaps with reading
   * and encoding the next ones; finish() still settles only when every page is stored, and memory
   * stays bounded by this many pages.
   */
  writesInFlight?: number;
  /** The most bytes all pages together may hold (default: no limit). */
  maxResultBytes?: number;
}

/** One row's JSON is larger than a page may be (brackets included). */
export class RowTooLargeError extends Error {
  constructor(
    /** 1-based, in the whole result. */
    readonly rowNumber: number,
    readonly rowBytes: number,
    readonly maxPageBytes: number,
  ) {
    super(
      `Row ${rowNumber} is ${rowBytes} bytes of JSON, more than a page may hold (${maxPageBytes} bytes).`,
    );
    this.name = 'RowTooLargeError';
  }
}

/** The pages would add up to more than maxResultBytes; the page that would cross it was not stored. */
export class ResultTooLargeError extends Error {
  constructor(readonly maxResultBytes: number) {
    super(`The result is larger than ${maxResultBytes} bytes.`);
    this.name = 'ResultTooLargeError';
  }
}

export interface PageWriterSummary {
  pageCount: number;
  rowCount: number;
  /** Rows per page, by page index; its sum is rowCount. */
  pageRowCounts: number[];
}

/**
 * What push returns when it only added the row to the open page (no page was cut): the common case
 * allocates no promise, and a hot loop that sees it can skip the `await` (a microtask per row).
 */
export const ROW_ADDED: Promise<void> = Promise.resolve();

// One UTF-16 code unit never takes more than 3 UTF-8 bytes (a surrogate pair takes 4 for 2 units).
const MAX_UTF8_PER_UNIT = 3;

export class PageWriter {
  private readonly maxRows: number;
  private readonly maxBytes: number;
  private readonly sink: PageSink;
  private readonly writesInFlight: number;
  private readonly maxResultBytes: number;
  // Bytes of every page cut so far, stored or in flight.
  private resultBytes = 0;
  // Started sink calls, oldest first; each settles without rejecting (a failure is recorded instead).
  private readonly inFlight: Promise<void>[] = [];

  // The open page. Measuring every row's UTF-8 length costs about a third of the hot path, so the
  // writer only sums string lengths while 3 bytes per code unit still cannot reach maxBytes, and
  // switches to exact byte counts (Buffer.byteLength) for the rest of the page once it might.
  private rows: string[] = [];
  private units = 0;
  private exact = false;
  // Exact UTF-8 length of `[` + rows joined by `,` + `]`; valid only while `exact`.
  private bytes = 0;

  private readonly pageRowCounts: number[] = [];
  private rowCount = 0;
  private pending = false;
  private failed = false;
  private failure: unknown = undefined;
  private finished = false;

  constructor(options: PageWriterOptions) {
    if (!Number.isSafeInteger(options.maxRows) || options.maxRows < 1) {
      throw new RangeError(`maxRows must be a positive integer, not ${options.maxRows}.`);
    }
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive integer, not ${options.maxBytes}.`);
    }
    const writesInFlight = options.writesInFlight ?? 1;
    if (!Number.isSafeInteger(writesInFlight) || writesInFlight < 1) {
      throw new RangeError(`writesInFlight must be a positive integer, not ${writesInFlight}.`);
    }
    this.maxRows = options.maxRows;
    this.maxBytes = options.maxBytes;
    this.sink = options.sink;
    this.writesInFlight = writesInFlight;
    this.maxResultBytes = options.maxResultBytes ?? Number.POSITIVE_INFINITY;
    if (!(this.maxResultBytes >= 1)) {
      throw new RangeError(`maxResultBytes must be at least 1, not ${options.maxResultBytes}.`);
    }
  }

  /**
   * Adds one encoded row. Await it before the next push: when a page closes, the promise settles
   * only once the sink has stored it. Calling push while a page write is pending is a bug and rejects.
   */
  push(rowJson: string): Promise<void> {
    const blocked = this.checkUsable('push');
    if (blocked !== undefined) return blocked;

    const count = this.rows.length;
    if (!this.exact) {
      // Upper bound of the page's bytes with this row: rows at 3 bytes per unit, commas, brackets.
      const units = this.units + rowJson.length;
      if (units * MAX_UTF8_PER_UNIT + count + 2 <= this.maxBytes) {
        this.rows.push(rowJson);
        this.units = units;
        return this.rows.length >= this.maxRows ? this.guard(this.flush()) : ROW_ADDED;
      }
      this.startExactCount();
    }

    const rowBytes = Buffer.byteLength(rowJson, 'utf8');
    // `[row]` must fit in a page. Only a long row gets here, so the short ones pay nothing for this.
    if (rowBytes + 2 > this.maxBytes) {
      return this.refuse(new RowTooLargeError(this.rowCount + count + 1, rowBytes, this.maxBytes));
    }
    if (count > 0 && this.bytes + 1 + rowBytes > this.maxBytes) {
      // The row does not fit: store the open page first, then start the next one with this row.
      return this.guard(this.flushThenAdd(rowJson, rowBytes));
    }
    this.addExact(rowJson, rowBytes);
    return this.isFull() ? this.guard(this.flush()) : ROW_ADDED;
  }

  /** Stores the last partial page and returns the totals. The writer takes no rows after this. */
  async finish(): Promise<PageWriterSummary> {
    const blocked = this.checkUsable('finish');
    if (blocked !== undefined) await blocked;
    this.finished = true;
    if (this.rows.length > 0) await this.guard(this.flush());
    await this.guard(this.drain(0));
    return {
      pageCount: this.pageRowCounts.length,
      rowCount: this.rowCount,
      pageRowCounts: this.pageRowCounts.slice(),
    };
  }

  /**
   * Waits until no page write is running any more, and never rejects. For error paths: once it
   * settles, no page of this writer can still land in storage after the caller removes the result.
   */
  async settle(): Promise<void> {
    while (this.inFlight.length > 0) await this.inFlight.shift();
  }

  private checkUsable(operation: string): Promise<never> | undefined {
    if (this.failed) return Promise.reject(this.failure);
    if (this.finished) return Promise.reject(new Error(`PageWriter.${operation} called after finish.`));
    if (this.pending) {
      return Promise.reject(
        new Error(`PageWriter.${operation} called while a page write is pending; await each push.`),
      );
    }
    return undefined;
  }

  /** Measures the rows already in the page, once, and counts exactly from here on. */
  private startExactCount(): void {
    let bytes = 2 + Math.max(0, this.rows.length - 1);
    for (const row of this.rows) bytes += Buffer.byteLength(row, 'utf8');
    this.bytes = bytes;
    this.exact = true;
  }

  private addExact(rowJson: string, rowBytes: number): void {
    this.bytes += this.rows.length === 0 ? rowBytes : rowBytes + 1;
    this.rows.push(rowJson);
  }

  // At maxBytes no further row (at least a comma and `{}`) can fit, so close the page now.
  private isFull(): boolean {
    return this.rows.length >= this.maxRows || (this.exact && this.bytes >= this.maxBytes);
  }

  /** Fails the writer for good with `error`. */
  private refuse(error: Error): Promise<never> {
    this.failed = true;
    this.failure = error;
    return Promise.reject(error);
  }

  /** Marks the writer busy for the whole of `work` and makes a failure permanent. */
  private async guard(work: Promise<void>): Promise<void> {
    this.pending = true;
    try {
      await work;
    } catch (error) {
      this.failed = true;
      this.failure = error;
      throw error;
    } finally {
      this.pending = false;
    }
  }

  private async flushThenAdd(rowJson: string, rowBytes: number): Promise<void> {
    await this.flush();
    // The new page starts in exact mode: its first row alone was already measured.
    this.exact = true;
    this.bytes = 2;
    this.addExact(rowJson, rowBytes);
    if (this.isFull()) await this.flush();
  }

  private async flush(): Promise<void> {
    const rows = this.rows;
    const exact = this.exact;
    const expectedBytes = this.bytes;
    this.rows = [];
    this.units = 0;
    this.exact = false;
    this.bytes = 0;

    // One join and one UTF-8 encode per page; the row strings are never copied one by one.
    const bytes = Buffer.from('[' + rows.join(',') + ']', 'utf8');
    if (bytes.length > this.maxBytes || (exact && bytes.length !== expectedBytes)) {
      // Cannot happen while Buffer.byteLength and Buffer.from agree; guards the size accounting.
      throw new Error(
        `Page size accounting is wrong: counted ${expectedBytes} bytes, encoded ${bytes.length}.`,
      );
    }
    if (this.resultBytes + bytes.length > this.maxResultBytes) {
      throw new ResultTooLargeError(this.maxResultBytes);
    }
    this.resultBytes += bytes.length;
    const index = this.pageRowCounts.length;
    this.pageRowCounts.push(rows.length);
    this.rowCount += rows.length;
    // Room for this write first: the oldest writes are waited for until fewer than the limit run.
    await this.drain(this.writesInFlight - 1);
    this.inFlight.push(
      this.sink(index, bytes, rows.length).catch((error: unknown) => {
        if (!this.failed) {
          this.failed = true;
          this.failure = error;
        }
      }),
    );
    await this.drain(this.writesInFlight - 1);
  }

  /** Waits for the oldest writes until at most `limit` run; rethrows a write's failure. */
  private async drain(limit: number): Promise<void> {
    while (this.inFlight.length > limit) await this.inFlight.shift();
    if (this.failed) throw this.failure;
  }
}
