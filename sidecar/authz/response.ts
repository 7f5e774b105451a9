// Decision → CheckResponse (envoy.service.auth.v3, keepCase field names): the one place a decision
// becomes Envoy's answer. The observable contract (docs/sidecar-contract.md): x-cas-* headers, the
// affinity Set-Cookie, redirect and error pages, PERMISSION_DENIED with a mapped HTTP status for
// redirects and errors, and dynamic_metadata cas_decision on every answer (docs/eas-451.md).
// DecisionRenderer (end of the file) chooses the answer; the functions above it build its shape.
import type { Topology } from "../../model/topology/types.js";
import { CAS_HEADERS, CONFIG_VERSION_METADATA_KEY, DECISION_METADATA_KEY } from "../../model/topology/names.js";
import type { ClientRequest, Decision, ErrorDecision } from "../decision/types.js";
import { AFFINITY_PATHS, affinityPathFor, type AffinitySigner } from "./affinity.js";
import { errorPage, manualRedirectPage, ssoFormPage, type Page } from "./pages.js";
import { credentialsOf } from "./request.js";

export type DecisionName =
  | "local"
  | "proxy"
  | "redirect-silent"
  | "redirect-manual"
  | "redirect-sso"
  | "redirect-451"
  | "redirect-addr"
  | "error";

/** gRPC status codes the sidecar answers with. */
export const GRPC_OK = 0;
export const GRPC_PERMISSION_DENIED = 7;

/**
 * The status Envoy sends for a redirect-451 before local_reply_config rewrites it to 451. 403: a
 * defined HttpStatus (451 is not, and Envoy validates defined_only), terminal for every client; 421
 * would invite HTTP/2 clients to retry on another connection if the mapper were ever missing.
 */
export const EAS_451_CARRIER_STATUS = 403;

/** Status codes defined in envoy.type.v3.StatusCode (http_status.proto). */
const DEFINED_STATUS = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
  404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500,
  501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/** A status Envoy accepts: undefined codes fall back to the class's generic code. */
export function definedStatus(status: number): number {
  if (DEFINED_STATUS.has(status)) return status;
  return status >= 500 && status < 600 ? 500 : status >= 400 && status < 500 ? 400 : 500;
}

export function decisionName(d: Decision): DecisionName {
  if (d.outcome !== "redirect") return d.outcome;
  if (d.kind === "autodiscoverAddr") return "redirect-addr";
  return d.kind === "eas451" ? "redirect-451" : (`redirect-${d.kind}` as DecisionName);
}

/** HeaderValueOption.HeaderAppendAction, as numbers (the sidecar's encoder takes enums as numbers). */
export const APPEND_IF_EXISTS_OR_ADD = 0;
export const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export interface HeaderValueOption {
  header: { key: string; value: string };
  append_action: typeof APPEND_IF_EXISTS_OR_ADD | typeof OVERWRITE_IF_EXISTS_OR_ADD;
}

export interface CheckResponseOut {
  status: { code: number; message?: string };
  ok_response?: {
    headers: HeaderValueOption[];
    headers_to_remove: readonly string[];
    response_headers_to_add: HeaderValueOption[];
  };
  denied_response?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
  dynamic_metadata: { readonly fields: Readonly<Record<string, { readonly stringValue: string }>> };
}

// Header options are frozen and shared by (key, value): their values come from the topology and the
// engine (decision names, sites, clusters, rule lists, configured URLs), so few distinct ones exist and
// an answer is built without allocating them. Bounded per key, in case a value is not so bounded.
const setOptions = new Map<string, Map<string, HeaderValueOption>>();
function set(key: string, value: string): HeaderValueOption {
  let byValue = setOptions.get(key);
  if (!byValue) setOptions.set(key, (byValue = new Map()));
  let o = byValue.get(value);
  if (!o) {
    if (byValue.size >= 4096) byValue.clear();
    o = Object.freeze({ header: Object.freeze({ key, value }), append_action: OVERWRITE_IF_EXISTS_OR_ADD }) as HeaderValueOption;
    byValue.set(value, o);
  }
  return o;
}
const add = (key: string, value: string): HeaderValueOption => ({ header: { key, value }, append_action: APPEND_IF_EXISTS_OR_ADD });

/** The rule IDs as x-cas-rules spells them: callers that already joined them pass the text. */
const rulesText = (rules: readonly string[] | string): string => (typeof rules === "string" ? rules : rules.join(","));

const STATUS_OK: CheckResponseOut["status"] = Object.freeze({ code: GRPC_OK });
const NO_OPTIONS: HeaderValueOption[] = Object.freeze([]) as unknown as HeaderValueOption[];

// One frozen object per decision name: the encoder caches its bytes by identity.
const metadataObjects = new Map<string, CheckResponseOut["dynamic_metadata"]>();
const metadata = (name: string): CheckResponseOut["dynamic_metadata"] => {
  let m = metadataObjects.get(name);
  if (!m) {
    m = Object.freeze({ fields: Object.freeze({ [DECISION_METADATA_KEY]: Object.freeze({ stringValue: name }) }) });
    metadataObjects.set(name, m);
  }
  return m;
};

// Decisions made with a configuration: the decision name and that configuration's version, one
// frozen object per name for the version in force (the previous version's are let go).
let versionedFor = "";
const versionedObjects = new Map<string, CheckResponseOut["dynamic_metadata"]>();

/** `response` with its dynamic metadata naming also the configuration version it was decided with. */
export function withConfigVersion(response: CheckResponseOut, name: string, version: string): CheckResponseOut {
  if (version !== versionedFor) {
    versionedObjects.clear();
    versionedFor = version;
  }
  let m = versionedObjects.get(name);
  if (!m) {
    m = Object.freeze({
      fields: Object.freeze({
        [DECISION_METADATA_KEY]: Object.freeze({ stringValue: name }),
        [CONFIG_VERSION_METADATA_KEY]: Object.freeze({ stringValue: version }),
      }),
    });
    versionedObjects.set(name, m);
  }
  return { ...response, dynamic_metadata: m };
}

const ALL_CAS = Object.values(CAS_HEADERS) as string[];

/** headers_to_remove: every x-cas-* name (and any other the client sent) this answer does not set. */
function toRemove(setNames: ReadonlySet<string>, casHeadersSent: readonly string[]): string[] {
  return [...new Set([...ALL_CAS, ...casHeadersSent])].filter((h) => !setNames.has(h)).sort();
}
// The common case (the client sent no x-cas-* header) by which optional headers are set: reused lists.
const removeLists = new Map<string, readonly string[]>();

/**
 * OK answer for local/proxy. Envoy applies headers_to_set before headers_to_remove (ext_authz.cc
 * onComplete), so headers_to_remove lists only the x-cas-* names this answer does not set.
 */
export function okResponse(
  d: Decision & { outcome: "local" | "proxy" },
  casHeadersSent: readonly string[],
  setCookies: readonly string[],
  rules: string = d.rules.join(","),
): CheckResponseOut {
  const headers: HeaderValueOption[] = [
    set(CAS_HEADERS.decision, d.outcome),
    set(CAS_HEADERS.targetSite, d.targetSite),
    set(CAS_HEADERS.cluster, d.cluster),
    set(CAS_HEADERS.rules, rules),
  ];
  if (d.targetServer) headers.push(set(CAS_HEADERS.targetServer, d.targetServer));
  if (d.rewrite) headers.push(set(CAS_HEADERS.rewrite, d.rewrite));
  let remove: readonly string[];
  if (casHeadersSent.length === 0) {
    const shape = `${d.targetServer ? 1 : 0}${d.rewrite ? 1 : 0}`;
    let cached = removeLists.get(shape);
    if (!cached) {
      cached = Object.freeze(toRemove(new Set(headers.map((h) => h.header.key)), []));
      removeLists.set(shape, cached);
    }
    remove = cached;
  } else remove = toRemove(new Set(headers.map((h) => h.header.key)), casHeadersSent);
  return {
    status: STATUS_OK,
    ok_response: {
      headers,
      headers_to_remove: remove,
      response_headers_to_add: setCookies.length ? setCookies.map((c) => add("set-cookie", c)) : NO_OPTIONS,
    },
    dynamic_metadata: metadata(d.outcome),
  };
}

/** Denied answer (redirect or error): Envoy sends this response to the client itself. */
export function deniedResponse(
  name: DecisionName,
  rules: readonly string[] | string,
  status: number,
  extraHeaders: Readonly<Record<string, string>>,
  body: string,
  message: string,
): CheckResponseOut {
  const headers = [set(CAS_HEADERS.decision, name), set(CAS_HEADERS.rules, rulesText(rules))];
  for (const [k, v] of Object.entries(extraHeaders)) headers.push(set(k, v));
  return {
    status: { code: GRPC_PERMISSION_DENIED, message },
    denied_response: { status: { code: definedStatus(status) }, headers, body },
    dynamic_metadata: metadata(name),
  };
}

export function pageResponse(name: DecisionName, rules: readonly string[] | string, page: Page, message: string): CheckResponseOut {
  return deniedResponse(name, rules, page.status, page.headers, page.body, message);
}

function silent(rules: string, url: string): CheckResponseOut {
  return deniedResponse("redirect-silent", rules, 302, { location: url, "cache-control": "no-store" }, "", "redirect-silent");
}

/** Origins (scheme://host:port) of every URL the topology configures: the only places we redirect to. */
const originsCache = new WeakMap<Topology, ReadonlySet<string>>();
export function configuredOrigins(t: Topology): ReadonlySet<string> {
  let s = originsCache.get(t);
  if (s) return s;
  const out = new Set<string>();
  const addUrl = (u: string | null | undefined) => {
    if (!u) return;
    try {
      out.add(new URL(u).origin.toLowerCase());
    } catch {
      /* not a URL: never a redirect target */
    }
  };
  for (const srv of t.servers.values()) {
    addUrl(srv.internalNLBBypassUrl);
    for (const v of srv.vdirs.values()) {
      addUrl(v.internalUrl);
      addUrl(v.externalUrl);
      addUrl(v.exchange2003Url);
    }
  }
  // R-HYB-1: the organisation's Exchange Online endpoints.
  for (const r of t.organizationRelationships.values()) {
    addUrl(r.targetOwaUrl);
    addUrl(r.targetActiveSyncUrl);
    addUrl(r.targetAutodiscoverEpr);
  }
  s = out;
  originsCache.set(t, s);
  return s;
}

/** An answer and the decision it answers. */
export interface Rendered {
  readonly name: DecisionName;
  /** The decision given, or the error that replaced a redirect to an unconfigured URL. */
  readonly decision: Decision;
  readonly response: CheckResponseOut;
  /** decision.rules as x-cas-rules spells them. */
  readonly rulesText: string;
}

const NO_COOKIES: readonly string[] = Object.freeze([]);

/** An error decision's answer: its page, with a status Envoy accepts. Needs no request. */
export function renderError(d: ErrorDecision, rules: string = d.rules.join(",")): Rendered {
  const status = d.status >= 400 && d.status < 600 ? d.status : 500;
  return { name: "error", decision: d, response: pageResponse("error", rules, errorPage(status, d.reason), d.reason), rulesText: rules };
}

/** Turns a decision into Envoy's answer: headers, affinity cookie, page or redirect, status. */
export class DecisionRenderer {
  constructor(private readonly affinity: AffinitySigner) {}

  /**
   * `request` is the request the engine decided on (its host and path scope the affinity cookie, the
   * SSO form reads its credentials); `casHeadersSent` the x-cas-* names the client sent; `topology`
   * the one decided with (redirects go only to origins it configures).
   */
  render(d: Decision, request: ClientRequest, casHeadersSent: readonly string[], topology: Topology): Rendered {
    const rules = d.rules.join(",");
    if (d.outcome === "error") return renderError(d, rules);
    if (d.outcome !== "redirect") {
      let cookies: readonly string[] = NO_COOKIES;
      const path = (d.service && AFFINITY_PATHS[d.service]) ?? affinityPathFor(request.path);
      if (path && d.affinity === "set" && d.targetServer) cookies = [this.affinity.setCookie(d.targetServer, request.host, path)];
      else if (path && d.affinity === "clear") cookies = [this.affinity.clearCookie(path)];
      return { name: d.outcome, decision: d, response: okResponse(d, casHeadersSent, cookies, rules), rulesText: rules };
    }
    // R-HYB-1: Autodiscover's redirectAddr answer names an address, not a URL.
    if (d.kind === "autodiscoverAddr") {
      const xml = autodiscoverRedirectAddr(d.url, request.body);
      if (!xml) {
        return renderError({ outcome: "error", status: 500, reason: "The gateway is misconfigured: the redirect address is not an e-mail address", rules: [...d.rules, "R-SIDECAR-unconfigured-redirect"], trace: [...d.trace, `refused redirectAddr to ${d.url}`] });
      }
      return { name: "redirect-addr", decision: d, response: deniedResponse("redirect-addr", rules, 200, { "content-type": "text/xml; charset=utf-8", "cache-control": "no-store" }, xml, "redirect-addr"), rulesText: rules };
    }
    // Redirect: only ever to an origin the topology configures (defence in depth over the engine).
    let target: URL | undefined;
    try {
      target = new URL(d.url);
    } catch {
      target = undefined;
    }
    if (!target || !configuredOrigins(topology).has(target.origin.toLowerCase())) {
      return renderError({
        outcome: "error",
        status: 500,
        reason: "The gateway is misconfigured: redirect target is not a configured URL",
        rules: [...d.rules, "R-SIDECAR-unconfigured-redirect"],
        trace: [...d.trace, `refused redirect to unconfigured URL ${d.url}`],
      });
    }
    const url = target.toString() === d.url ? d.url : target.toString();
    const name = decisionName(d);
    const answer = (n: DecisionName, response: CheckResponseOut): Rendered => ({ name: n, decision: d, response, rulesText: rules });
    switch (d.kind) {
      case "eas451":
        return answer(name, deniedResponse(name, rules, EAS_451_CARRIER_STATUS, { "x-ms-location": url, "cache-control": "no-store" }, "", "redirect-451"));
      case "silent":
        return answer(name, silent(rules, url));
      case "manual":
        return answer(name, pageResponse(name, rules, manualRedirectPage(url), name));
      case "sso": {
        // Credentials go to HTTPS targets only; without them the user signs in again at the target.
        if (target.protocol !== "https:") return answer("redirect-manual", pageResponse("redirect-manual", rules, manualRedirectPage(url), "redirect-manual"));
        const creds = credentialsOf(request);
        if (!creds) return answer("redirect-silent", silent(rules, url));
        return answer(name, pageResponse(name, rules, ssoFormPage(url, creds, undefined, d.ssoPostUrl), name));
      }
      default:
        return answer(name, pageResponse("error", rules, errorPage(500, "Unknown redirect kind"), "error"));
    }
  }
}

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/**
 * R-HYB-1: the POX Autodiscover answer that sends a client to another address (MS-OXDSCLI
 * Action redirectAddr; for ActiveSync's mobilesync schema, Action/Redirect), in the response schema
 * the request asked for. undefined when `address` is not a plain e-mail address.
 */
export function autodiscoverRedirectAddr(address: string, requestBody: string | undefined): string | undefined {
  if (!/^[^\s@<>&"']+@[A-Za-z0-9.-]+$/.test(address)) return undefined;
  const a = address.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);
  const head = '<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">\n';
  if (/AcceptableResponseSchema>\s*http:\/\/schemas\.microsoft\.com\/exchange\/autodiscover\/mobilesync\/responseschema\/2006/i.test(requestBody ?? "")) {
    return `${head}  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006">\n    <Action>\n      <Redirect>${a}</Redirect>\n    </Action>\n  </Response>\n</Autodiscover>\n`;
  }
  return `${head}  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">\n    <Account>\n      <Action>redirectAddr</Action>\n      <RedirectAddr>${a}</RedirectAddr>\n    </Account>\n  </Response>\n</Autodiscover>\n`;
}
