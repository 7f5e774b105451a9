// What goes into the decision engine and what comes out. The contract between the engine,
// the ext_authz/ext_proc sidecar, the mail proxy and `cas-gateway explain`.
import type { Service } from "../../crds/index.js";
import type { RewriteName } from "../../model/topology/names.js";

/** Stable rule IDs defined in docs/rules.md (Exchange rules and the engine's own R-ENG-* steps). */
export type RuleId = `R-${string}`;

/** One client request, as the gateway sees it (HTTP from Envoy's CheckRequest, or a mail login). */
export interface ClientRequest {
  /** HTTP method, or "LOGIN" for POP3/IMAP4. */
  readonly method: string;
  /** Host header (or SNI / mail listener's front-door host). */
  readonly host: string;
  /** Path with query string, as sent (e.g. /Microsoft-Server-ActiveSync?Cmd=Sync&User=bob). */
  readonly path: string;
  readonly scheme: "https" | "http";
  /** Header names lower-case. Client-sent x-cas-* headers must never change the outcome. */
  readonly headers: Readonly<Record<string, string>>;
  /** Request body when buffered (EWS SOAP, Autodiscover POST, OWA FBA logon), UTF-8. */
  readonly body?: string;
  readonly sourceAddress?: string;
  /** Source port of the downstream connection (with sourceAddress, the connection's key: R-LB-8). */
  readonly sourcePort?: number;
  /**
   * Set by the sidecar, which remembers connections (R-LB-8): this request's downstream connection,
   * and how the connection was decided when an earlier request on it authenticated with NTLM or
   * Negotiate. Absent for a lone request (explain), which is decided on its own.
   */
  readonly connection?: { readonly key: string; readonly bound?: ConnectionBinding };
  /** Set by the mail proxy: POP3 and IMAP4 do not come from a path. */
  readonly mail?: {
    readonly protocol: "Pop3" | "Imap4";
    /** The login name the client gave. */
    readonly user: string;
    /** SASL mechanism or LOGIN/USER-PASS, upper-case: PLAIN, LOGIN, NTLM, USER. */
    readonly mechanism: string;
  };
  /** The server named by a verified affinity pin (the sidecar checks the cookie signature). */
  readonly pinnedServer?: string;
}

/** Where a connection that authenticates with NTLM/Negotiate was sent by its first request (R-LB-8). */
export interface ConnectionBinding {
  readonly service: Service;
  readonly site: string;
  /** The one server the handshake stays on. */
  readonly server: string;
  readonly rewrite?: RewriteName;
  /** What decided it (the identity source, or "the receiving site"), for the trace. */
  readonly decidedBy: string;
}

/** "autodiscoverAddr" (R-HYB-1): an Autodiscover answer whose Action is redirectAddr; `url` is then an e-mail address. */
export type RedirectKind = "silent" | "manual" | "sso" | "eas451" | "autodiscoverAddr";

export interface DecisionCommon {
  /** Rule IDs applied, in order. */
  readonly rules: readonly RuleId[];
  /** Human trace, one line per step. */
  readonly trace: readonly string[];
  readonly service?: Service;
  readonly receivingSite?: string;
  /** The identity used, and its source (e.g. "x-anchormailbox", "basic", "ntlm"). */
  readonly identity?: { readonly value: string; readonly source: string };
}

export interface RouteDecision extends DecisionCommon {
  readonly outcome: "local" | "proxy";
  readonly targetSite: string;
  /** Set when one server is chosen (pin, NLB bypass, combined server, 2013+ active copy). */
  readonly targetServer?: string;
  /** Envoy cluster the route selects (model/topology/names.ts). */
  readonly cluster: string;
  /** Upstream path when it differs from the request's (EAS /Proxy, /Public). */
  readonly upstreamPath?: string;
  /** Named path rewrite the route applies (model/topology/names.ts PATH_REWRITES). */
  readonly rewrite?: RewriteName;
  /** Affinity: set a pin to targetServer, clear an existing pin, or leave it. */
  readonly affinity: "set" | "clear" | "keep" | "none";
  /** POP3/IMAP4: where the mail proxy connects. */
  readonly mailBackend?: { readonly host: string; readonly port: number; readonly encryption: "None" | "Ssl" | "Tls" };
}

export interface RedirectDecision extends DecisionCommon {
  readonly outcome: "redirect";
  readonly kind: RedirectKind;
  /**
   * Always a configured ExternalUrl, InternalUrl or exchange2003Url (or an OrganizationRelationship's
   * URL): never built from request input. Kind "autodiscoverAddr": a remote mailbox's target address
   * from the directory.
   */
  readonly url: string;
  /**
   * kind "sso": where the sign-on form posts, when it is not the target's own auth.owa: an Exchange
   * 2003 front end's /exchweb/bin/auth/owaauth.dll (R-OWA-9). Built from the configured URL's origin.
   */
  readonly ssoPostUrl?: string;
}

export interface ErrorDecision extends DecisionCommon {
  readonly outcome: "error";
  readonly status: number;
  /** Short and fit to show a user: no internal host names. */
  readonly reason: string;
  /** Set when the request had the shape of a published attack (R-SEC-1, R-SEC-3): logged at warning level. */
  readonly exploit?: { readonly cve: string; readonly attack: string; readonly pattern: string };
  /** R-HYB-1: the mailbox is in Exchange Online; the cloud's host (the mail proxy names it in an IMAP4 REFERRAL). */
  readonly cloudHost?: string;
}

export type Decision = RouteDecision | RedirectDecision | ErrorDecision;
