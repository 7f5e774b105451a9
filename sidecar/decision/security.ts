// Request shapes of the published attacks on Exchange's front end (R-SEC-1, R-SEC-3), recognised
// before anything else is read from the request. Patterns follow Microsoft's published mitigations:
// the Exchange On-premises Mitigation Tool's URL Rewrite rules for ProxyLogon (X-AnonResource-Backend
// cookie, X-BEResource=<host>/<path>~<version>), and the Emergency Mitigation M1 rule for
// ProxyNotShell (decoded URI holding both "autodiscover" and "powershell"); ProxyShell's
// `/autodiscover/autodiscover.json?@host/<back-end path>&Email=autodiscover/...`; OWASSRF's
// `/owa/<address>/powershell`. Cheap when nothing matches: this runs on every request.
import type { ClientRequest } from "./types.js";

export interface ExploitMatch {
  readonly rule: "R-SEC-1" | "R-SEC-3";
  /** The CVE the shape belongs to, as Microsoft's advisories name it. */
  readonly cve: string;
  /** The attack's public name. */
  readonly attack: string;
  /** What matched, for the trace and the warning log (no request values). */
  readonly pattern: string;
}

/** Cookies and headers that Exchange's own front end reads to pick a back end: never a client's to send. */
const BACKEND_SELECTORS = ["x-beresource", "x-anonresource-backend", "x-anonresource"] as const;
/** Headers Exchange's proxy sets towards the back end; a client sending them tries to steer it. */
const INTERNAL_HEADERS = ["x-beresource", "x-anonresource-backend", "x-anonresource", "x-calculatedbetarget", "x-betarget", "x-targetbeserver", "x-beserver"] as const;
/** <host>/<anything>~<number>: X-BEResource's own format, in any cookie. */
const BERESOURCE_VALUE_RE = /^[^\s/;=]+(?::\d+)?\/[^;]*~-?\d+\s*$/;
/** An Exchange application path after an "@host": ProxyShell's SSRF target. */
const EMBEDDED_APP_RE = /@[^&/?#\s]*\/(?:autodiscover|mapi|ews|owa|ecp|powershell|oab|rpc|microsoft-server-activesync)(?:[/?#&.]|$)/;
const MAX_DECODE_ROUNDS = 3;

/** Percent-decoded (repeatedly, as double encoding is a known bypass), lower-cased; never throws. */
function decoded(s: string): string {
  let cur = s;
  for (let i = 0; i < MAX_DECODE_ROUNDS && cur.indexOf("%") >= 0; i++) {
    let next: string;
    try {
      next = decodeURIComponent(cur);
    } catch {
      // A stray "%": decode what can be decoded.
      next = cur.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
    if (next === cur) break;
    cur = next;
  }
  return cur.toLowerCase();
}

function cookieNames(header: string): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name) out.push({ name, value: eq < 0 ? "" : part.slice(eq + 1).trim() });
  }
  return out;
}

/** The attack a request's shape belongs to, or undefined (almost always). */
export function exploitPattern(req: ClientRequest): ExploitMatch | undefined {
  if (req.mail) return undefined;
  const h = req.headers;
  for (const name of INTERNAL_HEADERS) {
    if (h[name] !== undefined) {
      return { rule: "R-SEC-1", cve: "CVE-2021-26855", attack: "ProxyLogon", pattern: `client-sent back-end selector header ${name}` };
    }
  }
  const cookie = h["cookie"];
  if (cookie !== undefined && cookie.length > 0) {
    const lower = cookie.toLowerCase();
    if (lower.indexOf("x-") >= 0 || lower.indexOf("~") >= 0) {
      for (const c of cookieNames(cookie)) {
        if ((BACKEND_SELECTORS as readonly string[]).includes(c.name)) {
          return { rule: "R-SEC-1", cve: "CVE-2021-26855", attack: "ProxyLogon", pattern: `back-end selector cookie ${c.name}` };
        }
        if (c.value.indexOf("~") >= 0 && c.value.indexOf("/") >= 0 && BERESOURCE_VALUE_RE.test(decoded(c.value))) {
          return { rule: "R-SEC-1", cve: "CVE-2021-26855", attack: "ProxyLogon", pattern: `host-and-path value in cookie ${c.name}` };
        }
      }
    }
  }

  const uri = req.path;
  // Fast exit: every pattern below needs one of these.
  const l = uri.toLowerCase();
  if (l.indexOf("%") < 0 && l.indexOf("autodiscover") < 0 && l.indexOf("powershell") < 0 && l.indexOf("@") < 0) return undefined;
  const d = decoded(uri);
  if (d.indexOf("autodiscover") >= 0 && d.indexOf("powershell") >= 0) {
    return { rule: "R-SEC-3", cve: "CVE-2022-41040", attack: "ProxyNotShell", pattern: "request URI names both autodiscover and powershell" };
  }
  const q = d.indexOf("?");
  const pathPart = q < 0 ? d : d.slice(0, q);
  const query = q < 0 ? "" : d.slice(q + 1);
  if (pathPart.indexOf("autodiscover.json") >= 0 && query.indexOf("@") >= 0 && EMBEDDED_APP_RE.test(query)) {
    return { rule: "R-SEC-3", cve: "CVE-2021-34473", attack: "ProxyShell", pattern: "autodiscover.json query carries @host/<Exchange path>" };
  }
  if (/(?:^|&)email=autodiscover\//.test(query)) {
    return { rule: "R-SEC-3", cve: "CVE-2021-34473", attack: "ProxyShell", pattern: "Email= names an autodiscover path" };
  }
  if (/^\/owa\/[^/?]*@[^/?]*\/powershell(?:[/?]|$)/.test(pathPart)) {
    return { rule: "R-SEC-3", cve: "CVE-2022-41080", attack: "OWASSRF", pattern: "OWA path to <address>/powershell" };
  }
  if (query.indexOf("@") >= 0 && EMBEDDED_APP_RE.test(query)) {
    return { rule: "R-SEC-3", cve: "CVE-2021-34473", attack: "ProxyShell", pattern: "query embeds @host/<Exchange path>" };
  }
  return undefined;
}
