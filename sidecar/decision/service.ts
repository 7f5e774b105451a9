// Which Exchange service a request is for: from the first path segment (case-insensitive), or
// from the mail proxy's login for POP3/IMAP4. Cheap: runs on every request.
import type { Service } from "../../crds/index.js";
import type { ClientRequest } from "./types.js";

const BY_SEGMENT: ReadonlyMap<string, Service> = new Map<string, Service>([
  ["owa", "Owa"],
  ["ecp", "Ecp"],
  ["microsoft-server-activesync", "ActiveSync"],
  ["ews", "Ews"],
  ["oab", "Oab"],
  ["autodiscover", "Autodiscover"],
  ["mapi", "Mapi"],
  ["rpc", "RpcHttp"],
  ["powershell", "PowerShell"],
  // Exchange 2003's OWA and public-folder paths (R-OWA-6, R-OWA-9, R-EWS-3): decided, not 404.
  ["exchange", "Owa"],
  ["exchweb", "Owa"],
  ["public", "Public"],
]);

/** Exchange 2003's paths: /exchange (OWA), /exchweb (its logon and resources), /public (public folders, free/busy). */
export type LegacyPath = "exchange" | "exchweb" | "public";

/** The Exchange 2003 path a request is for, or undefined. */
export function legacyPathOf(req: ClientRequest): LegacyPath | undefined {
  if (req.mail) return undefined;
  const seg = firstSegment(req.path);
  return seg === "exchange" || seg === "exchweb" || seg === "public" ? seg : undefined;
}

/** First path segment, lower-cased, without query: "/OWA/auth.owa?x" → "owa". */
export function firstSegment(path: string): string {
  let start = path.charCodeAt(0) === 47 /* / */ ? 1 : 0;
  let end = start;
  const n = path.length;
  while (end < n) {
    const c = path.charCodeAt(end);
    if (c === 47 || c === 63 /* ? */ || c === 35 /* # */) break;
    end++;
  }
  return path.slice(start, end).toLowerCase();
}

/** The service a request is for, or undefined when the path is not an Exchange application. */
export function serviceForRequest(req: ClientRequest): Service | undefined {
  if (req.mail) return req.mail.protocol;
  return BY_SEGMENT.get(firstSegment(req.path));
}

/** EWS Availability (R-EWS-3, R-EWS-5): a GetUserAvailability SOAP request in the body. */
export function isAvailabilityRequest(req: ClientRequest): boolean {
  const b = req.body;
  return b !== undefined && b.includes("GetUserAvailabilityRequest");
}

const AFFINITY_OP_RE = /<(?:[A-Za-z_][\w.-]*:)?(GetEvents|Unsubscribe)[\s/>]/;
const NOTIFICATION_OP_RE = /<(?:[A-Za-z_][\w.-]*:)?(Subscribe|GetEvents|GetStreamingEvents|Unsubscribe)[\s/>]/;

export type EwsNotificationOperation = "Subscribe" | "GetEvents" | "GetStreamingEvents" | "Unsubscribe";

/** EWS notification operations that keep affinity to the subscription's server (R-EWS-6), or undefined. */
export function ewsNotificationOperation(req: ClientRequest): EwsNotificationOperation | undefined {
  const b = req.body;
  if (b === undefined || (!b.includes("Subscribe") && !b.includes("GetEvents") && !b.includes("GetStreamingEvents"))) return undefined;
  const m = NOTIFICATION_OP_RE.exec(b);
  return m ? (m[1] as EwsNotificationOperation) : undefined;
}

/** EWS operations with strong server affinity (R-EWS-4), or undefined. */
export function ewsAffinityOperation(req: ClientRequest): "GetEvents" | "Unsubscribe" | undefined {
  const b = req.body;
  if (b === undefined || (!b.includes("GetEvents") && !b.includes("Unsubscribe"))) return undefined;
  const m = AFFINITY_OP_RE.exec(b);
  return m ? (m[1] as "GetEvents" | "Unsubscribe") : undefined;
}

/** The path's query string (without "?"), or "". */
export function queryOf(path: string): string {
  const q = path.indexOf("?");
  if (q < 0) return "";
  const h = path.indexOf("#", q);
  return h < 0 ? path.slice(q + 1) : path.slice(q + 1, h);
}

/** Path without query, lower-cased. */
export function lowerPathOnly(path: string): string {
  const q = path.indexOf("?");
  return (q < 0 ? path : path.slice(0, q)).toLowerCase();
}

/** Authorization: NTLM or Negotiate (Kerberos inside SPNEGO): schemes that authenticate the connection (R-LB-8). */
export function isConnectionAuthentication(authorization: string | undefined): boolean {
  if (authorization === undefined || authorization.length < 4) return false;
  const c = authorization.charCodeAt(0) | 0x20;
  if (c === 0x6e /* n */) return /^ntlm(\s|$)/i.test(authorization) || /^negotiate(\s|$)/i.test(authorization);
  return false;
}
