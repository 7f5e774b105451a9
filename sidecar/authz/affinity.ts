// Affinity pins (R-LB-2, R-LB-5): an HMAC-SHA256-signed cookie that names the server a user was
// sent to, scoped to one host and one virtual directory path. A tampered, expired or foreign
// (other host or path) cookie is ignored: the engine then makes a fresh pin.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Service } from "../../crds/index.js";

export const AFFINITY_COOKIE = "cas-affinity";
/** Cookies longer than this are not even parsed (a pin is ~150 bytes). */
const MAX_COOKIE_VALUE = 1024;
export const MIN_KEY_BYTES = 32;

/**
 * Cookie Path per service: only OWA, ECP and EWS keep affinity (R-LB-2). OWA and ECP share one pin
 * (R-LB-7: the forms-auth cookie one CAS issues is readable by that CAS only), so theirs is a cookie
 * the browser sends to both /owa and /ecp: Path=/, scope "/" in the signed payload.
 */
export const AFFINITY_PATHS: Partial<Record<Service, string>> = { Owa: "/", Ecp: "/", Ews: "/EWS" };
/** Request paths that share a scope, and the scope (cookie Path) they share. */
const SCOPES: readonly { readonly under: readonly string[]; readonly scope: string }[] = [
  { under: ["/owa", "/ecp"], scope: "/" },
  { under: ["/EWS"], scope: "/EWS" },
];

export interface Pin {
  readonly server: string;
  readonly host: string;
  readonly path: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

/** Read the HMAC key from a file (a mounted Secret); at least 32 bytes after trimming a trailing newline. */
export async function loadAffinityKey(file: string): Promise<Buffer> {
  const raw = await readFile(file);
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
  const key = raw.subarray(0, end);
  if (key.length < MIN_KEY_BYTES) {
    throw new Error(`${file}: affinity key is ${key.length} bytes; at least ${MIN_KEY_BYTES} are required`);
  }
  return Buffer.from(key);
}

export function randomAffinityKey(): Buffer {
  return randomBytes(32);
}

const normHost = (host: string) => host.trim().toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");

/** Does a request path fall under a cookie path (case-insensitive, on a segment boundary)? */
export function pathUnder(requestPath: string, cookiePath: string): boolean {
  const p = requestPath.toLowerCase();
  const c = cookiePath.toLowerCase();
  if (!p.startsWith(c)) return false;
  const next = p.charAt(c.length);
  return next === "" || next === "/" || next === "?";
}

/** The cookie path a request belongs to, if any (for verification before the engine runs). */
export function affinityPathFor(requestPath: string): string | undefined {
  for (const s of SCOPES) for (const p of s.under) if (pathUnder(requestPath, p)) return s.scope;
  return undefined;
}

/** Values of every cookie called `name` in a Cookie header (there can be several, from different paths). */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header || header.length > 16384) return [];
  const out: string[] = [];
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (v.length > 0 && v.length <= MAX_COOKIE_VALUE) out.push(v);
  }
  return out;
}

export class AffinitySigner {
  private readonly keyObject: KeyObject;
  /**
   * The last Set-Cookie value per server: the same host, path and expiry second give the same
   * bytes, so most answers reuse it without a signature (or a key string) being built.
   */
  private readonly memo = new Map<string, { host: string; path: string; exp: number; cookie: string }>();

  constructor(
    key: Buffer,
    /** Pin lifetime in seconds. */
    readonly ttlSeconds = 8 * 3600,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (key.length < MIN_KEY_BYTES) throw new Error(`affinity key must be at least ${MIN_KEY_BYTES} bytes`);
    this.keyObject = createSecretKey(Buffer.from(key));
  }

  /** The payload's HMAC as the cookie spells it (base64url): the one spelling verify accepts. */
  private mac(payload: string): string {
    return createHmac("sha256", this.keyObject).update(payload).digest("base64url");
  }

  /** The cookie value for a pin: base64url(JSON).base64url(HMAC). */
  sign(pin: Pin): string {
    const payload = Buffer.from(JSON.stringify({ s: pin.server, h: pin.host, p: pin.path, e: pin.exp })).toString("base64url");
    return `${payload}.${this.mac(payload)}`;
  }

  /** Verify one cookie value for this host and path; undefined when tampered, expired, foreign or malformed. */
  verify(value: string, host: string, path: string): Pin | undefined {
    const dot = value.indexOf(".");
    if (dot <= 0 || value.length > MAX_COOKIE_VALUE) return undefined;
    const payload = value.slice(0, dot);
    // Compared as text, not as decoded bytes: Node's base64url decoder ignores the last character's
    // spare bits (and stray characters), so several spellings decode to one MAC; only ours is valid.
    const sig = Buffer.from(value.slice(dot + 1), "latin1");
    const want = Buffer.from(this.mac(payload), "latin1");
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const o = parsed as Record<string, unknown>;
    if (typeof o.s !== "string" || typeof o.h !== "string" || typeof o.p !== "string" || typeof o.e !== "number") return undefined;
    if (o.e * 1000 <= this.now()) return undefined;
    if (o.h !== normHost(host) || o.p !== path) return undefined;
    return { server: o.s, host: o.h, path: o.p, exp: o.e };
  }

  /** The first valid pin in a Cookie header for this request, if any. */
  pinFromCookieHeader(cookieHeader: string | undefined, host: string, requestPath: string): Pin | undefined {
    const path = affinityPathFor(requestPath);
    if (!path) return undefined;
    for (const v of cookieValues(cookieHeader, AFFINITY_COOKIE)) {
      const pin = this.verify(v, host, path);
      if (pin) return pin;
    }
    return undefined;
  }

  /** Set-Cookie value that pins `server` for this host and service path. */
  setCookie(server: string, host: string, path: string): string {
    const exp = Math.floor(this.now() / 1000) + this.ttlSeconds;
    const hit = this.memo.get(server);
    if (hit && hit.exp === exp && hit.path === path && (hit.host === host || hit.host === normHost(host))) return hit.cookie;
    const h = normHost(host);
    const value = this.sign({ server, host: h, path, exp });
    const cookie = `${AFFINITY_COOKIE}=${value}; Path=${path}; Max-Age=${this.ttlSeconds}; Secure; HttpOnly; SameSite=Lax`;
    if (this.memo.size >= 1024) this.memo.clear();
    this.memo.set(server, { host: h, path, exp, cookie });
    return cookie;
  }

  /** Set-Cookie value that removes the pin for this path. */
  clearCookie(path: string): string {
    return `${AFFINITY_COOKIE}=; Path=${path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Lax`;
  }
}
