// Per-service HTTP routing facts: the front-door path prefixes, the timeouts each protocol needs,
// whether ext_authz must see the body, and whether the response phase (ext_proc) is needed.
import type { Service } from "../../../crds/index.js";

export interface ServiceRoute {
  readonly service: Service;
  /** Path prefixes (matched case-insensitively, on path-segment boundaries). */
  readonly prefixes: readonly string[];
  /** Whole-request timeout in seconds; 0 disables it (streams that last as long as the client wants). */
  readonly timeoutS: number;
  /** Per-route stream idle timeout in seconds. */
  readonly idleS: number;
  /** ext_authz gets the (bounded) request body: the identity is in it (EWS SOAP, Autodiscover POST). */
  readonly body: boolean;
  /** Response phase needed (affinity cookie, R-LB-2): ext_proc on; off elsewhere. */
  readonly responsePhase: boolean;
  /** WebSocket upgrades allowed on the route. */
  readonly websocket: boolean;
}

const MIN = 60;

/**
 * Timeouts (docs/xds.md): ActiveSync Ping long-polls up to ~29-30 minutes (HeartbeatInterval max
 * 3540 s in EAS 14+, typically ≤ 1680 s), EWS streaming notifications run up to 30 minutes, so both
 * get 32 minutes; MAPI/RPC over HTTP, OAB downloads and remote PowerShell are long streams with no
 * whole-request timeout, bounded by idle timeouts instead; OWA/ECP/Autodiscover are ordinary.
 */
export const SERVICE_ROUTES: readonly ServiceRoute[] = [
  { service: "ActiveSync", prefixes: ["/Microsoft-Server-ActiveSync"], timeoutS: 32 * MIN, idleS: 32 * MIN, body: false, responsePhase: false, websocket: false },
  { service: "Ews", prefixes: ["/EWS"], timeoutS: 32 * MIN, idleS: 32 * MIN, body: true, responsePhase: true, websocket: false },
  { service: "Autodiscover", prefixes: ["/Autodiscover"], timeoutS: 60, idleS: 60, body: true, responsePhase: false, websocket: false },
  { service: "Owa", prefixes: ["/owa", "/exchange", "/exchweb"], timeoutS: 5 * MIN, idleS: 5 * MIN, body: false, responsePhase: true, websocket: true },
  { service: "Ecp", prefixes: ["/ecp"], timeoutS: 5 * MIN, idleS: 5 * MIN, body: false, responsePhase: true, websocket: true },
  { service: "Oab", prefixes: ["/OAB"], timeoutS: 0, idleS: 5 * MIN, body: false, responsePhase: false, websocket: false },
  { service: "Mapi", prefixes: ["/mapi"], timeoutS: 0, idleS: 32 * MIN, body: false, responsePhase: false, websocket: false },
  { service: "RpcHttp", prefixes: ["/rpc"], timeoutS: 0, idleS: 60 * MIN, body: false, responsePhase: false, websocket: false },
  { service: "PowerShell", prefixes: ["/PowerShell"], timeoutS: 0, idleS: 30 * MIN, body: false, responsePhase: false, websocket: false },
  { service: "Public", prefixes: ["/public"], timeoutS: 5 * MIN, idleS: 5 * MIN, body: false, responsePhase: false, websocket: false },
];

/** OWA forms-based logon posts: the credentials (the identity) are in the body (R-OWA-3 SSO needs them). */
export const OWA_FBA_LOGON_PATHS = ["/owa/auth.owa", "/owa/auth/owaauth.dll"] as const;

/** Mail listener idle timeout: must outlast IMAP IDLE, which clients re-issue every ~29 minutes (RFC 2177). */
export const MAIL_IDLE_TIMEOUT_S = 31 * MIN;
/** SMTP servers drop idle sessions after 5 minutes (RFC 5321 4.5.3.2); the listener allows twice that. */
export const SMTP_IDLE_TIMEOUT_S = 10 * MIN;

/** Service whose prefix covers `path` (case-insensitive, on a segment boundary). */
export function serviceForPath(path: string): ServiceRoute | undefined {
  const p = path.toLowerCase();
  return SERVICE_ROUTES.find((r) =>
    r.prefixes.some((x) => {
      const l = x.toLowerCase();
      return p === l || p.startsWith(`${l}/`) || p.startsWith(`${l}?`);
    }),
  );
}

/** Envoy Duration in proto3 JSON form. */
export const dur = (seconds: number): string => `${Number(seconds.toFixed(9))}s`;
