// Mailbox directory read from Exchange's `Get-Mailbox | Export-Csv` output: a `#TYPE` first line,
// quoted fields, columns PrimarySmtpAddress, UserPrincipalName, SamAccountName, Database,
// ExchangeGuid and optionally EmailAddresses (smtp:/SMTP: entries). Parsed with PapaParse: its
// row-at-a-time `step` mode was the fastest maintained parser on a 1M-row export (3.4 s CPU for
// read + parse, against 6.0 s for csv-parse's stream API and 10 s for csv-parse/sync). Every look-up
// form is one probe of a typed-array hash index (key-index.ts): a Map of the 5M keys took 10.5 s of
// CPU to fill, the typed-array index 2.3 s (node --cpu-prof, 1M rows).
import { readFile } from "node:fs/promises";
import Papa from "papaparse";
import { KeyIndex } from "./key-index.js";
import type { DirectoryView, LookupResult, MailboxDirectory, MailboxRecord } from "./types.js";

export class CsvDirectoryError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(`${file}:${line}: ${field}: ${message}`);
    this.name = "CsvDirectoryError";
  }
}

const REQUIRED = ["PrimarySmtpAddress", "Database"] as const;
const GUID_RE = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;

/** Normalise an identity for look-up: lower-case, trimmed, GUID braces dropped. */
export function identityKey(identity: string): string {
  const s = identity.trim().toLowerCase();
  const g = GUID_RE.exec(s);
  return g ? g[1] : s;
}

export class CsvDirectory implements MailboxDirectory, DirectoryView {
  private readonly index: KeyIndex;
  private readonly lines: ArrayLike<number> | undefined;
  private lineIndex: Map<MailboxRecord, number> | undefined;
  private readonly all: readonly MailboxRecord[];
  readonly size: number;

  /**
   * `lines`, when given, holds each record's 1-based line in its source file (same order as records).
   * `normalised`: the records' keys are already lower-case, trimmed and brace-less (parseCsvDirectory
   * guarantees it), which saves normalising millions of keys again.
   */
  constructor(records: readonly MailboxRecord[], lines?: ArrayLike<number>, options: { normalised?: boolean } = {}) {
    this.all = records;
    this.lines = lines;
    const norm = options.normalised ? (k: string) => k : identityKey;
    // Key kinds: 0 primary, 1 UPN, 2 sam, 3 DOMAIN\sam, 4 GUID, 5 + j: emailAddresses[j].
    const keyOf = (item: number, kind: number): string | undefined => {
      const r = records[item];
      switch (kind) {
        case 0:
          return norm(r.primarySmtpAddress);
        case 1:
          return r.userPrincipalName === undefined ? undefined : norm(r.userPrincipalName);
        case 2:
          return r.samAccountName === undefined ? undefined : norm(r.samAccountName.toLowerCase());
        case 3:
          return r.samAccountName === undefined || !r.domain ? undefined : norm(`${r.domain}\\${r.samAccountName}`.toLowerCase());
        case 4:
          return r.exchangeGuid === undefined ? undefined : norm(r.exchangeGuid);
        default: {
          const a = r.emailAddresses[kind - 5];
          return a === undefined ? undefined : norm(a);
        }
      }
    };
    let keys = 0;
    for (const r of records) keys += 5 + r.emailAddresses.length;
    const index = (this.index = new KeyIndex(keys, keyOf));
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const primary = norm(r.primarySmtpAddress);
      index.set(primary, i, 0);
      const emails = r.emailAddresses;
      for (let j = 0; j < emails.length && j < 65_000; j++) {
        const a = norm(emails[j]);
        if (a !== primary) index.set(a, i, 5 + j);
      }
      if (r.userPrincipalName) index.set(norm(r.userPrincipalName), i, 1);
      if (r.samAccountName) {
        index.set(norm(r.samAccountName.toLowerCase()), i, 2);
        if (r.domain) index.set(norm(`${r.domain}\\${r.samAccountName}`.toLowerCase()), i, 3);
      }
      if (r.exchangeGuid) index.set(norm(r.exchangeGuid), i, 4);
    }
    this.size = records.length;
  }

  private get_(key: string): MailboxRecord | undefined {
    const i = this.index.get(key);
    return i < 0 ? undefined : this.all[i];
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

  /** Every record, in file order. */
  records(): readonly MailboxRecord[] {
    return this.all;
  }

  /** The record's line in its source file, when known. */
  lineOf(record: MailboxRecord): number | undefined {
    if (!this.lines) return undefined;
    if (!this.lineIndex) this.lineIndex = new Map(this.all.map((r, i) => [r, i]));
    const i = this.lineIndex.get(record);
    return i === undefined ? undefined : this.lines[i];
  }
}

/** A lower-case GUID without braces: 8-4-4-4-12 hex digits (checked by char code; no regex per row). */
function isGuid(g: string): boolean {
  if (g.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = g.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45 /* - */) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

interface Columns {
  readonly count: number;
  readonly primary: number;
  readonly upn: number;
  readonly sam: number;
  readonly domain: number;
  readonly database: number;
  readonly guid: number;
  readonly emails: number;
  readonly display: number;
}

/** Parse Export-Csv text. Throws CsvDirectoryError with file, line and column name on bad input. */
export function parseCsvDirectory(text: string, file = "<csv>"): CsvDirectory {
  let body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let line = 1; // line of the row PapaParse hands us next
  if (body.startsWith("#")) {
    // Export-Csv's "#TYPE Microsoft.Exchange..." line.
    const nl = body.indexOf("\n");
    body = nl < 0 ? "" : body.slice(nl + 1);
    line = 2;
  }
  const records: MailboxRecord[] = [];
  const lines: number[] = [];
  let at: Columns | undefined;
  const fail = (l: number, field: string, message: string): never => {
    throw new CsvDirectoryError(file, l, field, message);
  };
  // Line bookkeeping: PapaParse reports, per row, the offset just past it (meta.cursor). A row starts
  // on `line`; the line breaks before that offset (the row's own and any inside quoted fields) move
  // `line` on. `nl` is the next "\n" not yet counted: about one indexOf per row.
  let nl = body.indexOf("\n");
  Papa.parse<string[]>(body, {
    delimiter: ",",
    // Always "\n": PapaParse would otherwise guess one line ending for the whole file, and a
    // hand-edited export with both CRLF and LF rows would run rows together. A CR before the LF is
    // taken off the row's last field below (PapaParse already drops it after a closing quote).
    newline: "\n",
    quoteChar: '"',
    escapeChar: '"',
    step(results) {
      const startLine = line;
      const end = results.meta.cursor;
      while (nl >= 0 && nl < end) {
        line++;
        nl = body.indexOf("\n", nl + 1);
      }
      if (results.errors.length > 0) {
        const e = results.errors[0];
        fail(startLine, "(csv)", e.code === "MissingQuotes" ? `unterminated quoted field (opened on line ${startLine})` : e.message);
      }
      const f = results.data;
      const last = f.length - 1;
      if (f[last].charCodeAt(f[last].length - 1) === 13 /* \r */) f[last] = f[last].slice(0, -1);
      if (f.length === 1 && f[0].trim() === "") return; // empty line
      if (!at) {
        for (const c of REQUIRED) if (!f.includes(c)) fail(startLine, c, `required column "${c}" is missing`);
        const ix = (name: string) => f.indexOf(name);
        at = {
          count: f.length,
          primary: ix("PrimarySmtpAddress"),
          upn: ix("UserPrincipalName"),
          sam: ix("SamAccountName"),
          domain: ix("Domain"),
          database: ix("Database"),
          guid: ix("ExchangeGuid"),
          emails: ix("EmailAddresses"),
          display: ix("DisplayName"),
        };
        return;
      }
      if (f.length !== at.count) fail(startLine, "(csv)", `row has ${f.length} fields but the header has ${at.count} columns`);
      const rawPrimary = f[at.primary];
      const primary = rawPrimary.trim().toLowerCase();
      const atSign = primary.indexOf("@");
      if (atSign <= 0 || atSign === primary.length - 1) fail(startLine, "PrimarySmtpAddress", `"${rawPrimary}" is not an SMTP address`);
      const database = f[at.database].trim();
      if (!database) fail(startLine, "Database", "is empty");
      let guid: string | undefined;
      const rawGuid = at.guid >= 0 ? f[at.guid].trim() : "";
      if (rawGuid) {
        let g = rawGuid.toLowerCase();
        if (g.charCodeAt(0) === 123 /* { */ && g.charCodeAt(g.length - 1) === 125) g = g.slice(1, -1);
        if (!isGuid(g)) fail(startLine, "ExchangeGuid", `"${rawGuid}" is not a GUID`);
        guid = g;
      }
      const addresses = [primary];
      if (at.emails >= 0) addSmtpAddresses(f[at.emails], addresses);
      const upn = at.upn >= 0 ? f[at.upn].trim() : "";
      const sam = at.sam >= 0 ? f[at.sam].trim() : "";
      const domain = at.domain >= 0 ? f[at.domain].trim() : "";
      const display = at.display >= 0 ? f[at.display] : "";
      records.push({
        primarySmtpAddress: primary,
        userPrincipalName: upn ? upn.toLowerCase() : undefined,
        samAccountName: sam || undefined,
        domain: domain || undefined,
        database,
        exchangeGuid: guid,
        emailAddresses: addresses,
        displayName: display || undefined,
      });
      lines.push(startLine);
    },
  });
  if (!at) fail(line, "PrimarySmtpAddress", `required column "PrimarySmtpAddress" is missing (no header row)`);
  return new CsvDirectory(records, lines, { normalised: true });
}

/** "SMTP:a@x smtp:b@x;X400:..." → lower-case SMTP addresses, appended once each. */
function addSmtpAddresses(field: string, out: string[]): void {
  const n = field.length;
  let i = 0;
  while (i < n) {
    let end = i;
    for (; end < n; end++) {
      const c = field.charCodeAt(end);
      if (c === 32 || c === 59 || c === 44 || c === 9) break; // space ; , tab
    }
    if (end - i > 5) {
      const c0 = field.charCodeAt(i) | 0x20;
      if (c0 === 115 /* s */ && (field.charCodeAt(i + 1) | 0x20) === 109 && (field.charCodeAt(i + 2) | 0x20) === 116 && (field.charCodeAt(i + 3) | 0x20) === 112 && field.charCodeAt(i + 4) === 58) {
        const a = field.slice(i + 5, end).toLowerCase();
        const atSign = a.indexOf("@");
        if (atSign > 0 && atSign < a.length - 1 && !out.includes(a)) out.push(a);
      }
    }
    i = end + 1;
  }
}

export async function loadCsvDirectory(file: string): Promise<CsvDirectory> {
  // Buffer first, then one decode: readFile(file, "utf8") was 2.5 s vs 1.6 s for a 190 MB export.
  return parseCsvDirectory((await readFile(file)).toString("utf8"), file);
}
