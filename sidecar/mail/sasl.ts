// SASL pieces the proxy needs before authentication: PLAIN (RFC 4616) and LOGIN decoding, and just
// enough NTLM to learn who is logging in (the proxy cannot relay NTLM; see R-POP-4 in docs/mail-proxy.md).
import { randomBytes } from "node:crypto";

export interface Credentials {
  /** Authorization identity (PLAIN only; empty when the client acts as itself). */
  readonly authzid: string;
  /** Authentication identity: the login name. */
  readonly user: string;
  readonly password: string;
  /** Upper-case mechanism as the client used it: PLAIN, LOGIN, USER (POP3 USER/PASS), or IMAP LOGIN as "LOGIN". */
  readonly mechanism: string;
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 decoding: undefined when the text is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const t = text.trim();
  if (t.length % 4 !== 0 || !B64_RE.test(t)) return undefined;
  return Buffer.from(t, "base64");
}

/** PLAIN: authzid NUL authcid NUL passwd. */
export function parsePlain(message: Buffer): Credentials | undefined {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < message.length; i++) {
    if (message[i] === 0) {
      parts.push(message.subarray(start, i));
      start = i + 1;
    }
  }
  parts.push(message.subarray(start));
  if (parts.length !== 3) return undefined;
  const [authzid, user, password] = parts.map((p) => p.toString("utf8"));
  if (!user || !password) return undefined;
  return { authzid, user, password, mechanism: "PLAIN" };
}

export function encodePlain(c: Pick<Credentials, "authzid" | "user" | "password">): string {
  return Buffer.from(`${c.authzid}\0${c.user}\0${c.password}`, "utf8").toString("base64");
}

export const LOGIN_PROMPT_USER = Buffer.from("Username:").toString("base64");
export const LOGIN_PROMPT_PASS = Buffer.from("Password:").toString("base64");

/** The identity that names the mailbox: the authorization identity when one is given, else the login. */
export function mailboxIdentity(c: Credentials): string {
  return c.authzid || c.user;
}

// --- NTLM: a Type 2 challenge of our own, and the user and domain out of the client's Type 3. ---

const NTLMSSP = Buffer.from("NTLMSSP\0", "latin1");
const FLAG_UNICODE = 0x00000001;
const FLAG_NTLM = 0x00000200;
const FLAG_REQUEST_TARGET = 0x00000004;
const FLAG_ALWAYS_SIGN = 0x00008000;
const FLAG_TARGET_INFO = 0x00800000;

export function isNtlmMessage(b: Buffer, type: 1 | 2 | 3): boolean {
  return b.length >= 12 && b.subarray(0, 8).equals(NTLMSSP) && b.readUInt32LE(8) === type;
}

/** A syntactically valid Type 2 (challenge) message; its challenge is random and never verified. */
export function ntlmChallenge(): Buffer {
  const target = Buffer.from("CAS-GATEWAY", "utf16le");
  // Target info: MsvAvNbDomainName, then MsvAvEOL.
  const avName = Buffer.alloc(4);
  avName.writeUInt16LE(2, 0);
  avName.writeUInt16LE(target.length, 2);
  const info = Buffer.concat([avName, target, Buffer.alloc(4)]);
  const head = Buffer.alloc(48);
  NTLMSSP.copy(head, 0);
  head.writeUInt32LE(2, 8);
  head.writeUInt16LE(target.length, 12);
  head.writeUInt16LE(target.length, 14);
  head.writeUInt32LE(48, 16);
  head.writeUInt32LE(FLAG_UNICODE | FLAG_NTLM | FLAG_REQUEST_TARGET | FLAG_ALWAYS_SIGN | FLAG_TARGET_INFO, 20);
  randomBytes(8).copy(head, 24);
  head.writeUInt16LE(info.length, 40);
  head.writeUInt16LE(info.length, 42);
  head.writeUInt32LE(48 + target.length, 44);
  return Buffer.concat([head, target, info]);
}

/** User and domain from an NTLM Type 3 (authenticate) message; undefined when malformed. */
export function ntlmIdentity(b: Buffer): { user: string; domain: string } | undefined {
  if (!isNtlmMessage(b, 3) || b.length < 64) return undefined;
  const field = (off: number): Buffer | undefined => {
    const len = b.readUInt16LE(off);
    const at = b.readUInt32LE(off + 4);
    if (at + len > b.length) return undefined;
    return b.subarray(at, at + len);
  };
  const flags = b.readUInt32LE(60);
  const enc: BufferEncoding = flags & FLAG_UNICODE ? "utf16le" : "latin1";
  const domain = field(28);
  const user = field(36);
  if (!domain || !user || user.length === 0) return undefined;
  return { user: user.toString(enc), domain: domain.toString(enc) };
}
