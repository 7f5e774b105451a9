// Just enough IMAP4rev1 syntax (RFC 3501 section 9, RFC 7888 LITERAL+) to read the commands allowed
// before authentication: tag, command name, and astring / list / literal arguments.
import type { LineConnection } from "./connection.js";

export type ImapArg =
  | { readonly kind: "atom"; readonly value: string }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "list"; readonly items: readonly ImapArg[] };

export type ImapCommand =
  | { readonly ok: true; readonly tag: string; readonly name: string; readonly args: readonly ImapArg[] }
  /** A syntax error: answer `tag BAD text` (or `* BAD` without a tag); fatal ones end the connection. */
  | { readonly ok: false; readonly tag?: string; readonly text: string; readonly fatal?: boolean; readonly code?: string };

// tag = 1*<any ASTRING-CHAR except "+">; atoms exclude atom-specials.
const ATOM_SPECIALS = new Set([..."(){ %*\"\\]"].map((c) => c.charCodeAt(0)));
const isAtomChar = (c: number) => c > 0x20 && c < 0x7f && !ATOM_SPECIALS.has(c);
const isTagChar = (c: number) => (isAtomChar(c) || c === 0x5d) && c !== 0x2b;
const isAstringChar = (c: number) => isAtomChar(c) || c === 0x5d;

export interface ReadCommandOptions {
  readonly maxLiteralLength: number;
  /** Sends the continuation request for a synchronizing literal. */
  readonly continueLiteral: () => void;
}

/**
 * Read one command (several lines when it carries literals). Throws ReadError from the connection
 * (closed, idle, too long); returns syntax errors as values.
 */
export async function readImapCommand(conn: LineConnection, opts: ReadCommandOptions): Promise<ImapCommand> {
  let line = await conn.readLine();
  let pos = 0;

  const tagEnd = scan(line, 0, isTagChar);
  if (tagEnd === 0 || line[tagEnd] !== 0x20) {
    return { ok: false, text: line.length === 0 ? "Empty command line." : "Invalid tag." };
  }
  const tag = line.toString("latin1", 0, tagEnd);
  const nameEnd = scan(line, tagEnd + 1, isAtomChar);
  if (nameEnd === tagEnd + 1) return { ok: false, tag, text: "Missing command name." };
  const name = line.toString("latin1", tagEnd + 1, nameEnd).toUpperCase();
  pos = nameEnd;

  const root: ImapArg[] = [];
  const stack: ImapArg[][] = [root];
  const push = (a: ImapArg) => stack[stack.length - 1].push(a);

  for (;;) {
    if (pos >= line.length) break;
    const c = line[pos];
    if (c === 0x20) {
      pos++; // separators are not checked strictly: only what a login needs is read
      continue;
    }
    if (c === 0x28 /* ( */) {
      const list: ImapArg[] = [];
      push({ kind: "list", items: list });
      stack.push(list);
      pos++;
      continue;
    }
    if (c === 0x29 /* ) */) {
      if (stack.length === 1) return { ok: false, tag, text: "Unbalanced parenthesis." };
      stack.pop();
      pos++;
      continue;
    }
    if (c === 0x22 /* " */) {
      const out: number[] = [];
      let i = pos + 1;
      for (; i < line.length; i++) {
        const q = line[i];
        if (q === 0x5c /* \ */) {
          const n = line[i + 1];
          if (n !== 0x22 && n !== 0x5c) return { ok: false, tag, text: "Invalid escape in quoted string." };
          out.push(n);
          i++;
        } else if (q === 0x22) break;
        else if (q === 0x00) return { ok: false, tag, text: "NUL in quoted string." };
        else out.push(q);
      }
      if (i >= line.length) return { ok: false, tag, text: "Unterminated quoted string." };
      push({ kind: "string", value: Buffer.from(out).toString("utf8") });
      pos = i + 1;
      continue;
    }
    if (c === 0x7b /* { */) {
      const m = /^\{(\d{1,10})(\+?)\}$/.exec(line.toString("latin1", pos));
      if (!m) return { ok: false, tag, text: "Invalid literal." };
      const n = Number(m[1]);
      const nonSync = m[2] === "+";
      if (n > opts.maxLiteralLength) {
        // A synchronizing literal can be refused before the client sends it; a non-synchronizing one
        // is already on its way, so the connection has to go (RFC 7888 section 4).
        return nonSync
          ? { ok: false, tag, text: "Literal too big.", fatal: true, code: "TOOBIG" }
          : { ok: false, tag, text: "Literal too big.", code: "TOOBIG" };
      }
      if (!nonSync) opts.continueLiteral();
      const bytes = await conn.readBytes(n);
      if (bytes.includes(0)) return { ok: false, tag, text: "NUL in literal.", fatal: true };
      push({ kind: "string", value: bytes.toString("utf8") });
      line = await conn.readLine();
      pos = 0;
      if (line.length === 0) break;
      continue;
    }
    const end = scan(line, pos, isAstringChar);
    if (end === pos) return { ok: false, tag, text: "Invalid characters in command." };
    push({ kind: "atom", value: line.toString("latin1", pos, end) });
    pos = end;
  }
  if (stack.length !== 1) return { ok: false, tag, text: "Unbalanced parenthesis." };
  return { ok: true, tag, name, args: root };
}

function scan(b: Buffer, from: number, ok: (c: number) => boolean): number {
  let i = from;
  while (i < b.length && ok(b[i])) i++;
  return i;
}

/** The value of an astring argument (atom or string), or undefined. */
export function astring(a: ImapArg | undefined): string | undefined {
  return a && a.kind !== "list" ? a.value : undefined;
}

/** An IMAP string for a value we send: quoted when safe, else a literal (LITERAL+ when the peer has it). */
export function imapString(value: string, literalPlus: boolean): { text: string; literal?: Buffer } {
  const bytes = Buffer.from(value, "utf8");
  const safe = bytes.every((c) => c >= 0x20 && c < 0x7f);
  if (safe) return { text: `"${value.replace(/[\\"]/g, (m) => `\\${m}`)}"` };
  return { text: `{${bytes.length}${literalPlus ? "+" : ""}}`, literal: bytes };
}
