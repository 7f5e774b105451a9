// One row of Exchange's `Get-Mailbox | Export-Csv` output → a MailboxRecord, and a record's look-up
// keys. The same functions serve the load (every row checked once) and a look-up (one row parsed
// again on demand), so a record read back is exactly the record that was checked.
import { REMOTE_RECIPIENT_TYPES, targetAddressOf, type MailboxRecord } from "./types.js";

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

/** Where each known column is in a row (-1: absent). */
export interface Columns {
  readonly count: number;
  readonly primary: number;
  readonly upn: number;
  readonly sam: number;
  readonly domain: number;
  readonly database: number;
  readonly guid: number;
  readonly emails: number;
  readonly display: number;
  /** R-HYB-1: RecipientTypeDetails, and the remote routing address (RemoteRoutingAddress, TargetAddress or ExternalEmailAddress). */
  readonly recipientType: number;
  readonly target: number;
}

/** The header row → column positions; a missing required column is an error on the header's line. */
export function columnsOf(header: readonly string[], file: string, line: number): Columns {
  for (const c of REQUIRED) {
    // A Get-RemoteMailbox export has no Database: its rows are remote mailboxes (R-HYB-1).
    if (c === "Database" && header.includes("RecipientTypeDetails")) continue;
    if (!header.includes(c)) throw new CsvDirectoryError(file, line, c, `required column "${c}" is missing`);
  }
  const ix = (name: string) => header.indexOf(name);
  return {
    count: header.length,
    primary: ix("PrimarySmtpAddress"),
    upn: ix("UserPrincipalName"),
    sam: ix("SamAccountName"),
    domain: ix("Domain"),
    database: ix("Database"),
    guid: ix("ExchangeGuid"),
    emails: ix("EmailAddresses"),
    display: ix("DisplayName"),
    recipientType: ix("RecipientTypeDetails"),
    target: [ix("RemoteRoutingAddress"), ix("TargetAddress"), ix("ExternalEmailAddress")].find((i) => i >= 0) ?? -1,
  };
}

function fail(file: string, line: number, field: string, message: string): never {
  throw new CsvDirectoryError(file, line, field, message);
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

/**
 * Check and normalise one data row: keys lower-case and trimmed, GUID without braces, SMTP addresses
 * from EmailAddresses. Throws CsvDirectoryError with file, line and column name.
 */
export function rowToRecord(f: readonly string[], at: Columns, file: string, line: number): MailboxRecord {
  if (f.length !== at.count) fail(file, line, "(csv)", `row has ${f.length} fields but the header has ${at.count} columns`);
  const rawPrimary = f[at.primary];
  const primary = rawPrimary.trim().toLowerCase();
  const atSign = primary.indexOf("@");
  if (atSign <= 0 || atSign === primary.length - 1) fail(file, line, "PrimarySmtpAddress", `"${rawPrimary}" is not an SMTP address`);
  const database = at.database >= 0 ? f[at.database].trim() : "";
  // R-HYB-1: a remote mailbox (Get-RemoteMailbox rows) lives in Exchange Online: no database.
  const remoteType = at.recipientType >= 0 ? REMOTE_RECIPIENT_TYPES.get(f[at.recipientType].trim().toLowerCase()) : undefined;
  let remote: MailboxRecord["remote"];
  if (remoteType) {
    const rawTarget = at.target >= 0 ? f[at.target] : "";
    const targetAddress = targetAddressOf(rawTarget);
    if (!targetAddress) fail(file, line, at.target >= 0 ? "RemoteRoutingAddress" : "RecipientTypeDetails", at.target >= 0 ? `"${rawTarget}" is not an SMTP address (a ${remoteType} needs its target address in the tenant's routing domain)` : `${remoteType} needs a RemoteRoutingAddress (or TargetAddress) column`);
    remote = { targetAddress, recipientTypeDetails: remoteType };
  } else if (!database) fail(file, line, "Database", "is empty");
  let guid: string | undefined;
  const rawGuid = at.guid >= 0 ? f[at.guid].trim() : "";
  if (rawGuid) {
    let g = rawGuid.toLowerCase();
    if (g.charCodeAt(0) === 123 /* { */ && g.charCodeAt(g.length - 1) === 125) g = g.slice(1, -1);
    if (!isGuid(g)) fail(file, line, "ExchangeGuid", `"${rawGuid}" is not a GUID`);
    guid = g;
  }
  const addresses = [primary];
  if (at.emails >= 0) addSmtpAddresses(f[at.emails], addresses);
  const upn = at.upn >= 0 ? f[at.upn].trim() : "";
  const sam = at.sam >= 0 ? f[at.sam].trim() : "";
  const domain = at.domain >= 0 ? f[at.domain].trim() : "";
  const display = at.display >= 0 ? f[at.display] : "";
  return {
    primarySmtpAddress: primary,
    userPrincipalName: upn ? upn.toLowerCase() : undefined,
    samAccountName: sam || undefined,
    domain: domain || undefined,
    database,
    exchangeGuid: guid,
    emailAddresses: addresses,
    displayName: display || undefined,
    ...(remote ? { remote } : {}),
  };
}

/** Where the EmailAddresses token that starts at `i` ends (tokens are split on space ; , tab). */
export function tokenEnd(field: string, i: number): number {
  const n = field.length;
  let end = i;
  for (; end < n; end++) {
    const c = field.charCodeAt(end);
    if (c === 32 || c === 59 || c === 44 || c === 9) break;
  }
  return end;
}

/** Whether the token [i, end) is "smtp:" (any case) and something after it. */
export function isSmtpToken(field: string, i: number, end: number): boolean {
  return (
    end - i > 5 &&
    (field.charCodeAt(i) | 0x20) === 115 /* s */ &&
    (field.charCodeAt(i + 1) | 0x20) === 109 /* m */ &&
    (field.charCodeAt(i + 2) | 0x20) === 116 /* t */ &&
    (field.charCodeAt(i + 3) | 0x20) === 112 /* p */ &&
    field.charCodeAt(i + 4) === 58 /* : */
  );
}

/** "SMTP:a@x smtp:b@x;X400:..." → lower-case SMTP addresses, appended once each. */
function addSmtpAddresses(field: string, out: string[]): void {
  for (let i = 0; i < field.length; ) {
    const end = tokenEnd(field, i);
    if (isSmtpToken(field, i, end)) {
      const a = field.slice(i + 5, end).toLowerCase();
      const atSign = a.indexOf("@");
      if (atSign > 0 && atSign < a.length - 1 && !out.includes(a)) out.push(a);
    }
    i = end + 1;
  }
}

/**
 * Every look-up key of a record, each once: SMTP addresses (primary first), UPN, sam, DOMAIN\sam,
 * GUID. `normalised`: the record came from rowToRecord (keys already lower-case and trimmed), so
 * only the composed keys need lower-casing; otherwise every key goes through identityKey.
 */
export function recordKeys(r: MailboxRecord, normalised: boolean): string[] {
  const keys = normalised ? r.emailAddresses.slice() : r.emailAddresses.map(identityKey);
  const primary = normalised ? r.primarySmtpAddress : identityKey(r.primarySmtpAddress);
  if (!keys.includes(primary)) keys.unshift(primary);
  if (r.userPrincipalName) addKey(keys, normalised ? r.userPrincipalName : identityKey(r.userPrincipalName));
  if (r.samAccountName) {
    const sam = r.samAccountName.toLowerCase();
    addKey(keys, normalised ? sam : identityKey(sam));
    if (r.domain) {
      const both = `${r.domain}\\${r.samAccountName}`.toLowerCase();
      addKey(keys, normalised ? both : identityKey(both));
    }
  }
  if (r.exchangeGuid) addKey(keys, normalised ? r.exchangeGuid : identityKey(r.exchangeGuid));
  return keys;
}

function addKey(keys: string[], k: string): void {
  if (k && !keys.includes(k)) keys.push(k);
}
