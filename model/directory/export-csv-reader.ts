// Reads Export-Csv text piece by piece with PapaParse's parser, keeping count of source lines (quoted
// fields may hold line breaks) and where each row sits in the text, so a row can be parsed again
// later from the text alone. Pieces come from a file read through one reused buffer: on this kind of
// VM every fresh page costs a fault (~3 ms per MiB), and reading the whole file into one Buffer and
// one string touched twice the file's size in new memory before parsing began.
import { open } from "node:fs/promises";
import Papa from "papaparse";
import { CsvDirectoryError } from "./mailbox-row.js";

export interface CsvRowSink {
  /** The header row (first non-empty row). */
  header(fields: string[], line: number): void;
  /** A data row: its fields, its first line, and where its text is (piece index, [start, end)). */
  row(fields: string[], line: number, piece: number, start: number, end: number): void;
}

/** A row longer than this is taken for an unterminated quoted field rather than buffered on. */
const MAX_ROW_CHARS = 16 << 20;

const CONFIG = {
  delimiter: ",",
  // Always "\n": PapaParse would otherwise guess one line ending for the whole file, and a
  // hand-edited export with both CRLF and LF rows would run rows together. A CR before the LF is
  // taken off the row's last field (PapaParse already drops it after a closing quote).
  newline: "\n",
  quoteChar: '"',
  escapeChar: '"',
} as const;

function dropCr(f: string[]): string[] {
  const last = f.length - 1;
  if (f[last].charCodeAt(f[last].length - 1) === 13 /* \r */) f[last] = f[last].slice(0, -1);
  return f;
}

/**
 * The delimiter a header row uses when it is not the comma (Export-Csv -UseCulture in a locale
 * whose list separator is ";", or -Delimiter): the candidate that splits the row's first line into
 * the most fields without a syntax error, when that beats the comma.
 */
function otherDelimiter(rowText: string): string | undefined {
  const line = rowText.split(/\r?\n/, 1)[0];
  const fields = (delimiter: string) => {
    const r = Papa.parse<string[]>(line, { delimiter, quoteChar: '"', escapeChar: '"' });
    return r.errors.length > 0 ? 0 : (r.data[0]?.length ?? 0);
  };
  const comma = fields(",");
  let best: string | undefined;
  let most = Math.max(comma, 1);
  for (const d of [";", "\t", "|"]) {
    const n = fields(d);
    if (n > most) [best, most] = [d, n];
  }
  return best;
}

function wrongDelimiter(found: string): string {
  const name = found === "\t" ? "a tab" : JSON.stringify(found);
  return `expected "," as the delimiter (Export-Csv's default) but the header is delimited by ${name}; export again without -UseCulture/-Delimiter, or convert the file to commas`;
}

// One parser for re-parsing single rows: parse() starts afresh on every call.
const rowParser = new Papa.Parser(CONFIG);

/** Parse one row's text (as the reader recorded it) back into its fields. */
export function parseRowText(text: string): string[] {
  const res = rowParser.parse(text, 0, false) as { data: string[][] };
  return dropCr(res.data[0] ?? [""]);
}

export class ExportCsvReader {
  private readonly parser: Papa.Parser;
  /** Pieces that hold at least one row (rows point into them); the caller keeps what it needs. */
  readonly pieces: string[] = [];
  private partial = "";
  private started = false;
  private seenHeader = false;
  private line = 1; // line of the next row
  private text = "";
  private rowStart = 0;
  private nl = -1; // next "\n" in `text` not yet counted
  private rowsInPiece = 0;

  constructor(
    private readonly file: string,
    private readonly sink: CsvRowSink,
  ) {
    this.parser = new Papa.Parser({ ...CONFIG, step: (r: Papa.ParseStepResult<string[][]>) => this.step(r) });
  }

  /** Whether a header row has been read. */
  get hasHeader(): boolean {
    return this.seenHeader;
  }

  /** The line the next row would start on (for "missing header" errors). */
  get nextLine(): number {
    return this.line;
  }

  /** Feed the next piece of text; `last` for the final one. Pieces may end anywhere. */
  push(piece: string, last: boolean): void {
    let text = this.partial ? this.partial + piece : piece;
    this.partial = "";
    if (!this.started) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.startsWith("#")) {
        // Export-Csv's "#TYPE Microsoft.Exchange..." line.
        const nl = text.indexOf("\n");
        if (nl < 0 && !last) {
          this.partial = text;
          return;
        }
        text = nl < 0 ? "" : text.slice(nl + 1);
        this.line = 2;
      }
      this.started = true;
    }
    this.text = text;
    this.rowStart = 0;
    this.nl = text.indexOf("\n");
    this.rowsInPiece = 0;
    this.pieces.push(text);
    const res = this.parser.parse(text, 0, !last) as { meta: { cursor: number } };
    if (this.rowsInPiece === 0) this.pieces.pop();
    if (!last) {
      this.partial = res.meta.cursor === 0 ? text : text.slice(res.meta.cursor);
      if (this.partial.length > MAX_ROW_CHARS) {
        throw new CsvDirectoryError(this.file, this.line, "(csv)", `row is longer than ${MAX_ROW_CHARS >> 20} MiB: unterminated quoted field (opened on line ${this.line})?`);
      }
    }
  }

  private step(results: Papa.ParseStepResult<string[][]>): void {
    const startLine = this.line;
    const start = this.rowStart;
    const end = results.meta.cursor;
    this.rowStart = end;
    let nl = this.nl;
    let line = startLine;
    while (nl >= 0 && nl < end) {
      line++;
      nl = this.text.indexOf("\n", nl + 1);
    }
    this.nl = nl;
    this.line = line;
    if (results.errors.length > 0) {
      const e = results.errors[0];
      const other = !this.seenHeader ? otherDelimiter(this.text.slice(start, end)) : undefined;
      if (other) throw new CsvDirectoryError(this.file, startLine, "(csv)", wrongDelimiter(other));
      throw new CsvDirectoryError(this.file, startLine, "(csv)", e.code === "MissingQuotes" ? `unterminated quoted field (opened on line ${startLine})` : e.message);
    }
    const f = dropCr(results.data[0]);
    if (f.length === 1 && f[0].trim() === "") return; // empty line
    if (!this.seenHeader) {
      const other = f.length === 1 ? otherDelimiter(f[0]) : undefined;
      if (other) throw new CsvDirectoryError(this.file, startLine, "(csv)", wrongDelimiter(other));
      this.seenHeader = true;
      this.sink.header(f, startLine);
      return;
    }
    this.rowsInPiece++;
    this.sink.row(f, startLine, this.pieces.length - 1, start, end);
  }
}

/**
 * Read a file through one reused buffer, cut after its last line break (a "\n" byte is never inside
 * a UTF-8 sequence, so each piece decodes whole), and feed the reader.
 */
export async function readCsvFile(file: string, reader: ExportCsvReader, pieceBytes = 1 << 20): Promise<void> {
  const fh = await open(file, "r");
  try {
    let buf = Buffer.allocUnsafe(pieceBytes);
    let filled = 0;
    for (;;) {
      if (filled === buf.length) {
        // No line break in the whole buffer: one very long row; grow to hold it.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, filled);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
      if (bytesRead === 0) {
        reader.push(buf.toString("utf8", 0, filled), true);
        return;
      }
      filled += bytesRead;
      const cut = buf.lastIndexOf(10, filled - 1) + 1;
      if (cut === 0) continue;
      reader.push(buf.toString("utf8", 0, cut), false);
      buf.copy(buf, 0, cut, filled);
      filled -= cut;
    }
  } finally {
    await fh.close();
  }
}
