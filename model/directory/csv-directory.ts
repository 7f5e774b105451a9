// Mailbox directory read from Exchange's `Get-Mailbox | Export-Csv` output: a `#TYPE` first line,
// quoted fields, columns PrimarySmtpAddress, UserPrincipalName, SamAccountName, Database,
// ExchangeGuid and optionally EmailAddresses (smtp:/SMTP: entries), parsed with PapaParse.
//
// Loading checks every row once and indexes its keys, but keeps no per-row objects: the index maps
// each key's hash to a row number, the file's text is kept as read, and a row is parsed again when a
// look-up lands on it (a small cache keeps the recent ones). A million MailboxRecord objects (10M
// heap objects with their strings and arrays) cost more in garbage collection and fresh pages than
// the parse itself; without them a 1M-row export loads in well under half the time and heap.
import { stat } from "node:fs/promises";
import { ExportCsvReader, parseRowText, readCsvFile, type CsvRowSink } from "./export-csv-reader.js";
import { KeyIndex, fnv1a, type KeyIndexParts } from "./key-index.js";
import { CsvDirectoryError, columnsOf, identityKey, recordKeys, rowToRecord, type Columns } from "./mailbox-row.js";
import { rowKeyHashes } from "./row-key-hashes.js";
import type { DirectoryView, LookupResult, MailboxDirectory, MailboxRecord } from "./types.js";

export { CsvDirectoryError, identityKey } from "./mailbox-row.js";

/** @internal Where a directory's rows come from: records given in memory, or rows of an export's text. */
export interface RowSource {
  readonly size: number;
  record(row: number): MailboxRecord;
  line(row: number): number | undefined;
  database(row: number): string;
  /** Whether records' keys are already normalised (lower-case, trimmed, GUID without braces). */
  readonly normalised: boolean;
}

class MemoryRows implements RowSource {
  readonly normalised = false;
  constructor(private readonly records: readonly MailboxRecord[]) {}
  get size(): number {
    return this.records.length;
  }
  record(row: number): MailboxRecord {
    return this.records[row];
  }
  line(): undefined {
    return undefined;
  }
  database(row: number): string {
    return this.records[row].database;
  }
}

const META = 5; // per row: piece, start, end, line, database id

/** A copy twice as long (growing tables filled one entry at a time). */
function doubled(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const bigger = new Int32Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

/**
 * Rows of Export-Csv text: where each sits (piece, offsets, line) and its database, nothing more. A
 * record is rebuilt by parsing the row's own text again, so it is exactly the record checked at load.
 */
class TextRows implements RowSource {
  readonly normalised = true;
  private meta: Int32Array<ArrayBuffer> = new Int32Array(META * 4096);
  private count = 0;
  private readonly dbIds = new Map<string, number>();
  private readonly dbNames: string[] = [];

  constructor(
    private readonly pieces: readonly string[],
    private readonly file: string,
    private readonly columns: Columns,
  ) {}

  get size(): number {
    return this.count;
  }

  add(piece: number, start: number, end: number, line: number, database: string): number {
    let id = this.dbIds.get(database);
    if (id === undefined) {
      id = this.dbNames.length;
      this.dbIds.set(database, id);
      this.dbNames.push(database);
    }
    if ((this.count + 1) * META > this.meta.length) this.meta = doubled(this.meta);
    const at = this.count * META;
    this.meta[at] = piece;
    this.meta[at + 1] = start;
    this.meta[at + 2] = end;
    this.meta[at + 3] = line;
    this.meta[at + 4] = id;
    return this.count++;
  }

  record(row: number): MailboxRecord {
    const at = row * META;
    const text = this.pieces[this.meta[at]].slice(this.meta[at + 1], this.meta[at + 2]);
    return rowToRecord(parseRowText(text), this.columns, this.file, this.meta[at + 3]);
  }

  line(row: number): number {
    return this.meta[row * META + 3];
  }

  database(row: number): string {
    return this.dbNames[this.meta[row * META + 4]];
  }

  /** Drop the unused tail of the row table once loading is done. */
  trim(): void {
    this.meta = this.meta.slice(0, this.count * META);
  }

  parts(): Omit<CsvDirectoryParts, "index"> {
    return { file: this.file, columns: this.columns, pieces: this.pieces, meta: this.meta, count: this.count, databases: this.dbNames };
  }

  static fromParts(p: Omit<CsvDirectoryParts, "index">): TextRows {
    const rows = new TextRows(p.pieces, p.file, p.columns);
    rows.meta = p.meta;
    rows.count = p.count;
    for (const name of p.databases) {
      rows.dbIds.set(name, rows.dbNames.length);
      rows.dbNames.push(name);
    }
    return rows;
  }
}

/**
 * A text-backed directory as plain data, to be rebuilt in another thread without parsing again:
 * the worker that loaded it sends the pieces of text (one message each, so no single copy stalls the
 * receiver) and transfers the number tables.
 */
export interface CsvDirectoryParts {
  readonly file: string;
  readonly columns: Columns;
  readonly pieces: readonly string[];
  readonly meta: Int32Array<ArrayBuffer>;
  readonly count: number;
  readonly databases: readonly string[];
  readonly index: KeyIndexParts;
}

interface CacheEntry {
  readonly record: MailboxRecord;
  readonly keys: readonly string[];
}

/** How many parsed rows a text-backed directory keeps at hand (the hot mailboxes). */
const CACHE_ROWS = 8192;

export class CsvDirectory implements MailboxDirectory, DirectoryView {
  private readonly rows: RowSource;
  private readonly index: KeyIndex;
  /** Recently parsed rows, in two generations (see entry). */
  private recent = new Map<number, CacheEntry>();
  private older = new Map<number, CacheEntry>();
  /** Row of every record handed out, for lineOf. */
  private readonly rowOf = new WeakMap<MailboxRecord, number>();

  /** A directory over records given in memory (keys are normalised here). */
  constructor(records: readonly MailboxRecord[]);
  /** @internal A directory over rows being loaded (see parseCsvDirectory). */
  constructor(rows: RowSource, capacityHint: number);
  /** @internal A directory over loaded rows and their finished index (see fromParts). */
  constructor(rows: RowSource, capacityHint: number, index: KeyIndexParts);
  constructor(source: readonly MailboxRecord[] | RowSource, capacityHint = 0, index?: KeyIndexParts) {
    const rows = (this.rows = Array.isArray(source) ? new MemoryRows(source as readonly MailboxRecord[]) : (source as RowSource));
    const hasKey = (row: number, key: string) => this.entry(row).keys.includes(key);
    if (index) {
      this.index = KeyIndex.fromParts(index, hasKey);
      return;
    }
    this.index = new KeyIndex(Math.max(capacityHint, rows.size * 5), hasKey);
    // Rows given in memory are indexed now; rows being loaded are indexed when the load ends.
    for (let i = 0; i < rows.size; i++) this.indexRow(i, this.entry(i).record);
  }

  /** Rebuild a directory from parts made by parts() (in another thread). */
  static fromParts(p: CsvDirectoryParts): CsvDirectory {
    return new CsvDirectory(TextRows.fromParts(p), 0, p.index);
  }

  /** This directory as plain data (text-backed directories only: what parseCsvDirectory and loadCsvDirectory make). */
  parts(): CsvDirectoryParts {
    if (!(this.rows instanceof TextRows)) throw new Error("internal: only a directory loaded from Export-Csv text has parts");
    return { ...this.rows.parts(), index: this.index.parts() };
  }

  /** Index a row's keys (records given in memory). */
  private indexRow(row: number, record: MailboxRecord): void {
    for (const k of recordKeys(record, this.rows.normalised)) this.index.set(k, row);
  }

  /**
   * @internal Index rows by their keys' hashes, all at once (see KeyIndex.bulkSet). A hash that meets
   * another row's slot is resolved with the row's real keys, parsed from its text.
   */
  indexHashes(log: HashLog, file: string): void {
    const keyOf = (row: number, h: number) => {
      const k = this.entry(row).keys.find((x) => fnv1a(x) === h);
      if (k === undefined) throw new Error(`internal: row ${row} has no key with hash ${h}`);
      return k;
    };
    const dups: { key: string; first: number; again: number }[] = [];
    this.index.bulkSet(log.hashes, log.rows, log.count, keyOf, (kept, row, h) => {
      const key = keyOf(row, h);
      // A bare sam name may repeat across domains (DOMAIN\sam tells them apart); anything else is one mailbox's.
      if (isBareSam(key)) {
        const a = this.entry(kept).record.domain;
        const b = this.entry(row).record.domain;
        if (a && b && a.toLowerCase() !== b.toLowerCase()) return;
      }
      dups.push({ key, first: Math.min(kept, row), again: Math.max(kept, row) });
    });
    if (dups.length > 0) {
      dups.sort((x, y) => x.again - y.again);
      const d = dups[0];
      const more = dups.length > 1 ? ` (and ${dups.length - 1} more duplicate key${dups.length > 2 ? "s" : ""})` : "";
      throw new CsvDirectoryError(
        file,
        this.rows.line(d.again) ?? 0,
        "(duplicate)",
        `${JSON.stringify(d.key)} is also on line ${this.rows.line(d.first)}: an address, UPN, sam name or ExchangeGuid belongs to one mailbox${more}`,
      );
    }
  }

  get size(): number {
    return this.rows.size;
  }

  private entry(row: number): CacheEntry {
    let e = this.recent.get(row);
    if (e) return e;
    e = this.older.get(row);
    if (!e) {
      const record = this.rows.record(row);
      e = { record, keys: recordKeys(record, this.rows.normalised) };
      this.rowOf.set(record, row);
    }
    // Two generations: when the recent one fills, it becomes the older one and the oldest is dropped.
    // (A Map used as an LRU by deleting its first key slows down as deleted slots pile up.)
    if (this.recent.size >= CACHE_ROWS) {
      this.older = this.recent;
      this.recent = new Map();
    }
    this.recent.set(row, e);
    return e;
  }

  private get_(key: string): MailboxRecord | undefined {
    const row = this.index.get(key);
    return row < 0 ? undefined : this.entry(row).record;
  }

  find(identity: string): LookupResult {
    const key = identityKey(identity);
    let m = this.get_(key);
    const slash = key.indexOf("\\");
    if (!m && slash > 0) {
      // DOMAIN\sam: exact above when the export has a Domain column; otherwise by sam alone.
      m = this.get_(key.slice(slash + 1));
      if (m?.domain && m.domain.toLowerCase() !== key.slice(0, slash)) m = undefined;
    }
    return m ? { status: "found", mailbox: m } : { status: "not-found" };
  }

  async lookup(identity: string): Promise<LookupResult> {
    return this.find(identity);
  }

  /** Every record, in file order (parses every row of a text-backed directory: meant for small ones). */
  records(): readonly MailboxRecord[] {
    return this.recordsWhere(undefined);
  }

  /** Mailboxes per database name, without parsing any row again. */
  databases(): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 0; i < this.rows.size; i++) {
      const db = this.rows.database(i);
      out.set(db, (out.get(db) ?? 0) + 1);
    }
    return out;
  }

  /** The records whose database is `name` (only those rows are parsed again). */
  recordsInDatabase(name: string): MailboxRecord[] {
    return this.recordsWhere(name);
  }

  private recordsWhere(database: string | undefined): MailboxRecord[] {
    const out: MailboxRecord[] = [];
    for (let i = 0; i < this.rows.size; i++) {
      if (database !== undefined && this.rows.database(i) !== database) continue;
      const r = this.rows.record(i);
      this.rowOf.set(r, i);
      out.push(r);
    }
    return out;
  }

  /** The record's line in its source file, when known. */
  lineOf(record: MailboxRecord): number | undefined {
    const row = this.rowOf.get(record);
    return row === undefined ? undefined : this.rows.line(row);
  }
}

/** A key that is neither an address/UPN (@), DOMAIN\\sam, nor a GUID: a sam account name on its own. */
function isBareSam(key: string): boolean {
  return !key.includes("@") && !key.includes("\\") && !/^[0-9a-f]{8}-[0-9a-f]{4}-/.test(key);
}

/** (key hash, row) pairs collected during a load, indexed in one go at its end. */
class HashLog {
  hashes: Int32Array<ArrayBuffer>;
  rows: Int32Array<ArrayBuffer>;
  count = 0;
  constructor(capacity: number) {
    this.hashes = new Int32Array(Math.max(16, capacity));
    this.rows = new Int32Array(Math.max(16, capacity));
  }
  add(hash: number, row: number): void {
    if (this.count === this.hashes.length) {
      this.hashes = doubled(this.hashes);
      this.rows = doubled(this.rows);
    }
    this.hashes[this.count] = hash;
    this.rows[this.count++] = row;
  }
}

/** Builds a directory while the reader streams rows in. */
class Loader implements CsvRowSink {
  readonly reader: ExportCsvReader;
  private rows: TextRows | undefined;
  private dir: CsvDirectory | undefined;
  private columns: Columns | undefined;
  private readonly hashes: number[] = [];
  private readonly log: HashLog;

  constructor(
    private readonly file: string,
    private readonly sizeHint: number,
  ) {
    this.reader = new ExportCsvReader(file, this);
    this.log = new HashLog(Math.ceil(sizeHint / 40));
  }

  header(fields: string[], line: number): void {
    this.columns = columnsOf(fields, this.file, line);
    this.rows = new TextRows(this.reader.pieces, this.file, this.columns);
    // About one key per 40 characters of a typical export (5 keys in a 200-character row).
    this.dir = new CsvDirectory(this.rows, Math.ceil(this.sizeHint / 40));
  }

  row(fields: string[], line: number, piece: number, start: number, end: number): void {
    const columns = this.columns!;
    const rows = this.rows!;
    const hashes = this.hashes;
    let database = rowKeyHashes(fields, columns, hashes);
    if (database === undefined) {
      // Not plainly good ASCII: the exact path checks it (and throws the row's error).
      const record = rowToRecord(fields, columns, this.file, line);
      database = record.database;
      hashes.length = 0;
      for (const k of recordKeys(record, true)) hashes.push(fnv1a(k));
    }
    const row = rows.add(piece, start, end, line, database);
    for (let i = 0; i < hashes.length; i++) this.log.add(hashes[i], row);
  }

  finish(): CsvDirectory {
    if (!this.rows || !this.dir) {
      throw new CsvDirectoryError(this.file, this.reader.nextLine, "PrimarySmtpAddress", `required column "PrimarySmtpAddress" is missing (no header row)`);
    }
    this.rows.trim();
    this.dir.indexHashes(this.log, this.file);
    return this.dir;
  }
}

/** Parse Export-Csv text. Throws CsvDirectoryError with file, line and column name on bad input. */
export function parseCsvDirectory(text: string, file = "<csv>"): CsvDirectory {
  const loader = new Loader(file, text.length);
  loader.reader.push(text, true);
  return loader.finish();
}

/** Load an Export-Csv file, reading it piece by piece (`pieceBytes`: the read buffer, 1 MiB). */
export async function loadCsvDirectory(file: string, options: { pieceBytes?: number } = {}): Promise<CsvDirectory> {
  const { size } = await stat(file);
  const loader = new Loader(file, size);
  await readCsvFile(file, loader.reader, options.pieceBytes);
  return loader.finish();
}
