// The user and domain inside an NTLM AUTHENTICATE (type 3) message [MS-NLMP 2.2.1.3], as sent in
// `Authorization: NTLM <base64>` or wrapped in SPNEGO in `Authorization: Negotiate <base64>`.
// Every length and offset is bounds-checked: this parses untrusted bytes.
const SIGNATURE = Buffer.from("NTLMSSP\0", "latin1");
const NEGOTIATE_UNICODE = 0x00000001;
const MAX_NAME_BYTES = 1024;

export interface NtlmIdentity {
  readonly user: string;
  readonly domain: string;
  /** "DOMAIN\user", or the bare user (often a UPN) when the domain is empty. */
  readonly identity: string;
}

/** Parse an NTLM type 3 message from raw bytes; undefined when it is anything else. */
export function parseNtlmAuthenticate(bytes: Uint8Array): NtlmIdentity | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = buf.indexOf(SIGNATURE);
  if (start < 0) return undefined;
  const msg = buf.subarray(start);
  // Fixed part up to and including UserName's security buffer (offset 36 + 8).
  if (msg.length < 44) return undefined;
  if (msg.readUInt32LE(8) !== 3) return undefined;
  // NegotiateFlags sit at 60 when the message is long enough and the payload starts after them.
  let unicode = true;
  if (msg.length >= 64) {
    const flags = msg.readUInt32LE(60);
    unicode = (flags & NEGOTIATE_UNICODE) !== 0;
  }
  const field = (at: number): string | undefined => {
    const len = msg.readUInt16LE(at);
    const off = msg.readUInt32LE(at + 4);
    if (len === 0) return "";
    if (len > MAX_NAME_BYTES || off > msg.length || off + len > msg.length) return undefined;
    if (unicode && len % 2 !== 0) return undefined;
    const raw = msg.subarray(off, off + len);
    return unicode ? raw.toString("utf16le") : raw.toString("latin1");
  };
  const domain = field(28);
  const user = field(36);
  if (domain === undefined || user === undefined || user.length === 0) return undefined;
  if (/[\u0000-\u001f]/.test(user) || /[\u0000-\u001f]/.test(domain)) return undefined;
  return { user, domain, identity: domain ? `${domain}\\${user}` : user };
}

/** From an Authorization header value: "NTLM xxx" or "Negotiate xxx" (SPNEGO-wrapped NTLM). */
export function ntlmIdentityFromAuthorization(value: string): NtlmIdentity | undefined {
  const sp = value.indexOf(" ");
  if (sp < 0) return undefined;
  const scheme = value.slice(0, sp).toLowerCase();
  if (scheme !== "ntlm" && scheme !== "negotiate") return undefined;
  const b64 = value.slice(sp + 1).trim();
  if (b64.length < 40 || b64.length > 16384) return undefined;
  const bytes = Buffer.from(b64, "base64");
  return parseNtlmAuthenticate(bytes);
}

/** Build a type 3 message (for tests and the explain command's --ntlm-user). */
export function buildNtlmAuthenticate(user: string, domain: string, opts: { unicode?: boolean } = {}): Buffer {
  const unicode = opts.unicode ?? true;
  const enc = (s: string) => Buffer.from(s, unicode ? "utf16le" : "latin1");
  const d = enc(domain);
  const u = enc(user);
  const w = enc("WORKSTATION");
  const header = Buffer.alloc(64);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let off = 64;
  const put = (at: number, b: Buffer) => {
    header.writeUInt16LE(b.length, at);
    header.writeUInt16LE(b.length, at + 2);
    header.writeUInt32LE(off, at + 4);
    off += b.length;
  };
  put(12, Buffer.alloc(0)); // LmChallengeResponse
  put(20, Buffer.alloc(0)); // NtChallengeResponse
  put(28, d);
  put(36, u);
  put(44, w);
  put(52, Buffer.alloc(0)); // EncryptedRandomSessionKey
  header.writeUInt32LE(unicode ? NEGOTIATE_UNICODE | 0x00000200 : 0x00000002 | 0x00000200, 60);
  return Buffer.concat([header, d, u, w]);
}
