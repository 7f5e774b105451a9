// Mailbox directory read from Exchange's `Get-Mailbox | Export-Csv` output: a `#TYPE` first line,
// quoted fields, columns PrimarySmtpAddress, UserPrincipalName, SamAccountName, Database,
// ExchangeGuid and optionally EmailAddresses (smtp:/SMTP: entries). All look-ups are one Map get.
import { readFile } from "node:fs/promises";
import { parse } from "csv-parse/sync";
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
  private readonly index = new Map<string, MailboxRecord>();
  private readonly lines: ReadonlyMap<MailboxRecord, number> | undefined;
  private readonly all: readonly MailboxRecord[];
  readonly size: number;

  /** `lines`, when given, holds each record's 1-based line in its source file (same order as records). */
  constructor(records: readonly MailboxRecord[], lines?: readonly number[]) {
    this.all = records;
    if (lines) this.lines = new Map(records.map((r, i) => [r, lines[i] ?? 0]));
    for (const r of records) {
      const keys = [r.primarySmtpAddress, ...r.emailAddresses, r.userPrincipalName, r.samAccountName, r.exchangeGuid];
      if (r.domain && r.samAccountName) keys.push(`${r.domain}\\${r.samAccountName}`);
      for (const k of keys) if (k) this.index.set(identityKey(k), r);
    }
    this.size = records.length;
  }

  find(identity: string): LookupResult {
    const key = identityKey(identity);
    let m = this.index.get(key);
    const slash = key.indexOf("\\");
    if (!m && slash > 0) {
      // DOMAIN\sam: exact above when the export has a Domain column; otherwise by sam alone.
      m = this.index.get(key.slice(slash + 1));
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
    return this.lines?.get(record);
  }
}

/** Parse Export-Csv text. Throws CsvDirectoryError with file, line and column name on bad input. */
export function parseCsvDirectory(text: string, file = "<csv>"): CsvDirectory {
  let body = text.replace(/^\uFEFF/, "");
  let lineOffset = 0;
  if (body.startsWith("#TYPE") || body.startsWith("#")) {
    const nl = body.indexOf("\n");
    body = nl < 0 ? "" : body.slice(nl + 1);
    lineOffset = 1;
  }
  let rows: { record: Record<string, string>; info: { lines: number } }[];
  try {
    rows = parse(body, {
      columns: true,
      skip_empty_lines: true,
      relax_column_count: false,
      trim: true,
      info: true,
      bom: true,
    }) as { record: Record<string, string>; info: { lines: number } }[];
  } catch (err) {
    const e = err as { lines?: number; message?: string };
    // csv-parse counts lines from the header; report file lines (the #TYPE line included).
    const message = (e.message ?? String(err)).replace(/\bat line (\d+)/g, (_m, n: string) => `at line ${Number(n) + lineOffset}`);
    throw new CsvDirectoryError(file, (e.lines ?? 0) + lineOffset, "(csv)", message);
  }
  const records: MailboxRecord[] = [];
  const lines: number[] = [];
  if (rows.length > 0) {
    const cols = Object.keys(rows[0].record);
    for (const c of REQUIRED) {
      if (!cols.includes(c)) throw new CsvDirectoryError(file, 1 + lineOffset, c, `required column "${c}" is missing`);
    }
  }
  for (const { record: r, info } of rows) {
    const line = info.lines + lineOffset;
    const primary = (r.PrimarySmtpAddress ?? "").toLowerCase();
    if (!primary.includes("@")) {
      throw new CsvDirectoryError(file, line, "PrimarySmtpAddress", `"${r.PrimarySmtpAddress ?? ""}" is not an SMTP address`);
    }
    if (!r.Database) throw new CsvDirectoryError(file, line, "Database", "is empty");
    let guid: string | undefined;
    if (r.ExchangeGuid) {
      const g = GUID_RE.exec(r.ExchangeGuid);
      if (!g) throw new CsvDirectoryError(file, line, "ExchangeGuid", `"${r.ExchangeGuid}" is not a GUID`);
      guid = g[1].toLowerCase();
    }
    const addresses = new Set<string>([primary]);
    for (const a of (r.EmailAddresses ?? "").split(/[\s;,]+/)) {
      const m = /^smtp:(.+@.+)$/i.exec(a);
      if (m) addresses.add(m[1].toLowerCase());
    }
    const sam = r.SamAccountName || undefined;
    const domain = r.Domain || undefined;
    records.push(
      Object.freeze({
        primarySmtpAddress: primary,
        userPrincipalName: r.UserPrincipalName ? r.UserPrincipalName.toLowerCase() : undefined,
        samAccountName: sam,
        domain,
        database: r.Database,
        exchangeGuid: guid,
        emailAddresses: Object.freeze([...addresses]),
        displayName: r.DisplayName || undefined,
      }),
    );
    lines.push(line);
  }
  return new CsvDirectory(records, lines);
}

export async function loadCsvDirectory(file: string): Promise<CsvDirectory> {
  return parseCsvDirectory(await readFile(file, "utf8"), file);
}
