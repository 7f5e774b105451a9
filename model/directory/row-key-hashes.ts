// The load's fast path: the FNV-1a hashes of a row's look-up keys, computed straight from the raw
// fields (lower-casing and trimming on the fly) without building the MailboxRecord or any key string.
// It answers only for rows that are plainly good and all ASCII; for anything else it returns
// undefined and the caller takes the exact path (rowToRecord, which also raises the row's error).
// row-key-hashes.test.ts checks, over generated rows, that both paths give the same hashes and accept
// the same rows.
import { isSmtpToken, tokenEnd, type Columns } from "./mailbox-row.js";

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

// Set by hashLower when it meets a non-ASCII character (whose lower case JavaScript must decide).
let nonAscii = false;

/** FNV-1a, continuing from h, of s[from, to) lower-cased (ASCII). */
function hashLower(s: string, from: number, to: number, h: number): number {
  for (let i = from; i < to; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    else if (c >= 128) nonAscii = true;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h;
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

// Trim bounds of the last field looked at (ASCII white space; anything else stops the trim, and a
// non-ASCII character left inside sends the row to the exact path).
let ts = 0;
let te = 0;
function trimBounds(s: string): void {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s.charCodeAt(a))) a++;
  while (b > a && isSpace(s.charCodeAt(b - 1))) b--;
  ts = a;
  te = b;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function push(out: number[], h: number): void {
  // One slot per distinct hash: two keys of one row with one hash both find the row anyway.
  if (!out.includes(h)) out.push(h);
}

/**
 * Fill `out` with the hashes of the row's keys (SMTP addresses, UPN, sam, DOMAIN\sam, GUID) and return
 * the row's database (trimmed); or return undefined when the row needs the exact path.
 */
export function rowKeyHashes(f: readonly string[], at: Columns, out: number[]): string | undefined {
  out.length = 0;
  nonAscii = false;
  if (f.length !== at.count) return undefined;

  const p = f[at.primary];
  trimBounds(p);
  const atSign = p.indexOf("@", ts);
  if (atSign <= ts || atSign >= te - 1) return undefined;
  out.push(hashLower(p, ts, te, FNV_OFFSET));

  const database = at.database >= 0 ? f[at.database].trim() : "";
  if (!database) return undefined;

  if (at.emails >= 0) {
    // As addSmtpAddresses (the address's first "@" neither first nor last), hashed in place.
    const field = f[at.emails];
    for (let i = 0; i < field.length; ) {
      const end = tokenEnd(field, i);
      if (isSmtpToken(field, i, end)) {
        const a = field.indexOf("@", i + 5);
        if (a > i + 5 && a < end - 1) push(out, hashLower(field, i + 5, end, FNV_OFFSET));
      }
      i = end + 1;
    }
  }

  if (at.upn >= 0) {
    const u = f[at.upn];
    trimBounds(u);
    if (te > ts) push(out, hashLower(u, ts, te, FNV_OFFSET));
  }

  if (at.sam >= 0) {
    const s = f[at.sam];
    trimBounds(s);
    if (te > ts) {
      const samFrom = ts;
      const samTo = te;
      push(out, hashLower(s, samFrom, samTo, FNV_OFFSET));
      if (at.domain >= 0) {
        const d = f[at.domain];
        trimBounds(d);
        if (te > ts) push(out, hashLower(s, samFrom, samTo, Math.imul(hashLower(d, ts, te, FNV_OFFSET) ^ 92 /* \ */, FNV_PRIME)));
      }
    }
  }

  if (at.guid >= 0) {
    const g = f[at.guid];
    trimBounds(g);
    if (te > ts) {
      let a = ts;
      let b = te;
      if (g.charCodeAt(a) === 123 /* { */ && g.charCodeAt(b - 1) === 125 /* } */) {
        a++;
        b--;
      }
      if (b - a !== 36) return undefined;
      for (let i = 0; i < 36; i++) {
        const c = g.charCodeAt(a + i);
        if (i === 8 || i === 13 || i === 18 || i === 23 ? c !== 45 : !isHex(c)) return undefined;
      }
      push(out, hashLower(g, a, b, FNV_OFFSET));
    }
  }
  return nonAscii ? undefined : database;
}
