// Which identities a request carries, in precedence order (docs/decisions.md "Identity"):
//   1. X-AnchorMailbox header (SMTP:/UPN: prefixes dropped)
//   2. MAPI/HTTP `MailboxId=<guid>@<domain>` or RPC/HTTP `?<guid>@<domain>:6001` (R-OUT-1)
//   3. Autodiscover `<EMailAddress>` in the POST body, or `Email=` of autodiscover.json (R-AUTOD-1)
//   4. Basic Authorization user
//   5. NTLM AUTHENTICATE (type 3) user and domain (NTLM or SPNEGO-wrapped Negotiate)
//   6. ActiveSync `User=` (plain query, or tag 8 of the base64 query of protocol 12.1+)
//   7. OWA forms-based logon POST (`username` field of /owa/auth.owa)
//   POP3/IMAP4: the login name the mail proxy saw.
// Target-naming keys (1-3) come before credentials (4-7) because they name the mailbox to open,
// which for a delegate or a shared mailbox is not the signed-in user's own.
// The caller resolves these values with resolveIdentities() before calling decide().
// Client-sent x-cas-* headers are never read here.
import type { ClientRequest } from "./types.js";
import { ntlmIdentityFromAuthorization } from "./ntlm.js";
import { easQueryUser } from "./eas-query.js";
import { firstSegment, lowerPathOnly, queryOf } from "./service.js";

export interface IdentityCandidate {
  readonly value: string;
  readonly source: string;
}

const MAX_IDENTITY = 320;
const GUID_AT_RE = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?@([^:\s]+)/i;
const EMAIL_RE = /<(?:[A-Za-z_][\w.-]*:)?EMailAddress>\s*([^<\s]{1,320})\s*<\/(?:[A-Za-z_][\w.-]*:)?EMailAddress>/;

function clean(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (s.length === 0 || s.length > MAX_IDENTITY) return undefined;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 32) return undefined;
  return s;
}

/** X-AnchorMailbox: "SMTP:a@b", "UPN:a@b", or a bare address; Sid~/PUID:/OID: forms cannot be resolved here. */
export function anchorMailboxIdentity(value: string): string | undefined {
  let v = value.trim();
  const colon = v.indexOf(":");
  if (colon > 0 && colon <= 5) {
    const prefix = v.slice(0, colon).toLowerCase();
    if (prefix === "smtp" || prefix === "upn") v = v.slice(colon + 1);
    else return undefined;
  }
  if (/^(sid|puid|oid|externaldirectoryobjectid)~/i.test(v)) return undefined;
  return clean(v);
}

/** Basic credentials' user name. */
export function basicUser(authorization: string): string | undefined {
  // "Basic " compared without allocating.
  if (
    authorization.length < 7 ||
    (authorization.charCodeAt(0) | 0x20) !== 0x62 ||
    (authorization.charCodeAt(1) | 0x20) !== 0x61 ||
    (authorization.charCodeAt(2) | 0x20) !== 0x73 ||
    (authorization.charCodeAt(3) | 0x20) !== 0x69 ||
    (authorization.charCodeAt(4) | 0x20) !== 0x63 ||
    authorization.charCodeAt(5) !== 0x20
  ) {
    return undefined;
  }
  const b64 = authorization.slice(6).trim();
  if (b64.length === 0 || b64.length > 4096) return undefined;
  const bytes = Buffer.from(b64, "base64");
  const colon = bytes.indexOf(0x3a);
  return clean(bytes.toString("utf8", 0, colon < 0 ? bytes.length : colon));
}

function queryParam(query: string, name: string): string | undefined {
  if (query.length === 0) return undefined;
  const lname = name.toLowerCase();
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).toLowerCase() === lname) {
      try {
        return decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** `<guid>@<domain>` (MAPI MailboxId, RPC proxy target) → the mailbox GUID the directory knows. */
export function mailboxGuidOf(connectionPoint: string): string | undefined {
  const m = GUID_AT_RE.exec(connectionPoint.trim());
  return m ? m[1].toLowerCase() : undefined;
}

/** The identities a request carries, highest precedence first, without duplicates. */
function add(out: IdentityCandidate[], value: string | undefined, source: string): void {
  if (value === undefined) return;
  for (const c of out) if (c.value === value) return;
  out.push({ value, source });
}

export function identityCandidates(req: ClientRequest): IdentityCandidate[] {
  const out: IdentityCandidate[] = [];
  if (req.mail) {
    add(out, clean(req.mail.user), req.mail.protocol === "Pop3" ? "pop3-login" : "imap4-login");
    return out;
  }
  const h = req.headers;
  const anchor = h["x-anchormailbox"];
  if (anchor !== undefined) add(out, anchorMailboxIdentity(anchor), "x-anchormailbox");

  const seg = firstSegment(req.path);
  if (seg === "mapi") {
    const id = queryParam(queryOf(req.path), "MailboxId");
    if (id !== undefined) add(out, mailboxGuidOf(id), "mapi-mailboxid");
  } else if (seg === "rpc") {
    const q = queryOf(req.path);
    const target = q.includes("=") ? queryParam(q, "RpcProxy") : safeDecode(q);
    if (target !== undefined) add(out, mailboxGuidOf(target), "rpc-mailboxid");
  } else if (seg === "autodiscover") {
    if (req.body !== undefined && req.method.toUpperCase() === "POST") {
      const m = EMAIL_RE.exec(req.body);
      if (m) add(out, clean(m[1]), "autodiscover-emailaddress");
    }
    add(out, clean(queryParam(queryOf(req.path), "Email")), "autodiscover-email-query");
  }

  const auth = h["authorization"];
  if (auth !== undefined) {
    const first = auth.charCodeAt(0) | 0x20;
    if (first === 0x62 /* b */) add(out, basicUser(auth), "basic");
    else if (first === 0x6e /* n */) add(out, clean(ntlmIdentityFromAuthorization(auth)?.identity), "ntlm");
  }

  if (seg === "microsoft-server-activesync") {
    const q = easQueryUser(queryOf(req.path));
    if (q !== undefined) add(out, clean(q.user), q.form === "plain" ? "eas-user" : "eas-base64-user");
  } else if (seg === "owa" && req.body !== undefined && req.method.toUpperCase() === "POST") {
    if (lowerPathOnly(req.path).startsWith("/owa/auth.owa")) {
      add(out, clean(queryParam(req.body, "username")), "owa-fba-username");
    }
  }
  return out;
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
