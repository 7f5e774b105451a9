// One request, top to bottom: CheckRequest → ClientRequest (verified pin, no x-cas-*) → identities →
// directory (with a deadline below Envoy's timeout) → decide() → render the answer (response.ts) →
// metrics and the decision line. This module orchestrates; it builds no header, cookie or page.
// Nothing thrown escapes: a failure becomes an error decision (503), never a crashed process or a
// hung call.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Topology } from "../../model/topology/types.js";
import type { HealthView } from "../../model/health.js";
import type { ClientRequest, Decision } from "../decision/types.js";
import type { DirectoryView, LookupResult, MailboxDirectory } from "../../model/directory/types.js";
import { directoryDeadlineMs, resolveIdentities } from "../../model/directory/types.js";
import type { GatewayState, StateSource } from "../../model/state.js";
import type { AffinitySigner } from "./affinity.js";
import { DeadlineTicker, LookupTimeout } from "./deadline-ticker.js";
import type { SidecarMetrics } from "./metrics.js";
import { BadRequestError, mapCheckRequest, type MappedRequest } from "./request.js";
import { ConnectionMemory, connectionKey } from "./connections.js";
import { isConnectionAuthentication, serviceForRequest } from "../decision/service.js";
import { DecisionRenderer, renderError, withConfigVersion, type CheckResponseOut, type DecisionName, type Rendered } from "./response.js";

/** The decision engine's entry points (sidecar/decision/engine.ts and identity.ts). */
export interface DecisionEngine {
  identityCandidates(req: ClientRequest): { value: string; source: string }[];
  decide(
    req: ClientRequest,
    topology: Topology,
    directory: DirectoryView,
    health: HealthView,
    /** `candidates`: identityCandidates(req), already computed for the look-up (not extracted twice). */
    options?: { defaultSite?: string; candidates?: readonly { value: string; source: string }[]; trace?: boolean },
  ): Decision;
}

/** What to do when the directory is unreachable or too slow: refuse (503) or serve locally. */
export type DirectoryFailurePolicy = "fail-closed" | "local";

export interface DecisionServiceOptions {
  readonly state: StateSource;
  readonly directory: MailboxDirectory;
  readonly engine: DecisionEngine;
  readonly affinity: AffinitySigner;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  /** Directory deadline; keep it below Envoy's ext_authz timeout (Envoy's default is 200 ms). */
  readonly lookupTimeoutMs?: number;
  readonly directoryFailurePolicy?: DirectoryFailurePolicy;
  /** Receiving site when the Host matches none (context_extensions `cas_site` overrides per route). */
  readonly defaultSite?: string;
  /** Per-connection memory for NTLM/Negotiate connections (R-LB-8); a default-bounded one when absent. */
  readonly connections?: ConnectionMemory;
}

export const DEFAULT_LOOKUP_TIMEOUT_MS = 150;
/** Decision lines queued before they are written without waiting for the end of the turn. */
const MAX_QUEUED_LINES = 256;
/** context_extensions key the translator may set per route/vhost: the receiving site. */
export const CONTEXT_SITE_KEY = "cas_site";

export interface Evaluation {
  readonly name: DecisionName;
  readonly decision: Decision;
  readonly response: CheckResponseOut;
  readonly requestId: string;
  /** decision.rules joined as x-cas-rules spells them. */
  readonly rulesText: string;
}

export interface Explanation {
  readonly decision: Decision;
  /** The state decided against (absent while the gateway is starting). */
  readonly state?: GatewayState;
  /** The server of a verified affinity cookie sent with the request. */
  readonly pinnedServer?: string;
}

const NOT_FOUND: LookupResult = { status: "not-found" };
/** The directory view when the request names no identity. */
const NO_DIRECTORY: DirectoryView = { find: () => NOT_FOUND };

export class DecisionService {
  readonly lookupTimeoutMs: number;
  readonly policy: DirectoryFailurePolicy;
  private readonly deadlines = new DeadlineTicker();
  private readonly renderer: DecisionRenderer;
  readonly connections: ConnectionMemory;

  /** Per-API children: `api` is serialized once into the binding, not formatted on every line. */
  private readonly apiLog: Record<"ext_authz" | "ext_proc", Logger>;
  /** Decision-line children by rules → decision → site → identity source (see decisionLog). */
  private readonly lineLoggers: Record<"ext_authz" | "ext_proc", Map<string, Map<string, Map<string | undefined, Map<string | undefined, Logger>>>>> = {
    ext_authz: new Map(),
    ext_proc: new Map(),
  };

  constructor(private readonly o: DecisionServiceOptions) {
    this.lookupTimeoutMs = o.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.policy = o.directoryFailurePolicy ?? "fail-closed";
    this.renderer = new DecisionRenderer(o.affinity);
    this.connections = o.connections ?? new ConnectionMemory();
    o.metrics.connectionMemory = this.connections;
    this.apiLog = { ext_authz: o.logger.child({ api: "ext_authz" }), ext_proc: o.logger.child({ api: "ext_proc" }) };
  }

  /** ext_authz Check: never rejects. */
  async check(raw: unknown): Promise<CheckResponseOut> {
    return (await this.evaluateRaw(raw, "ext_authz")).response;
  }

  async evaluateRaw(raw: unknown, api: "ext_authz" | "ext_proc"): Promise<Evaluation> {
    return this.evaluateAny(raw, api);
  }

  /**
   * The whole pipeline; synchronous when the directory can answer synchronously (an in-memory
   * directory: no promise per request, nothing held across an await while other requests run),
   * a promise otherwise. Never throws, never rejects.
   */
  evaluateAny(raw: unknown, api: "ext_authz" | "ext_proc"): Evaluation | Promise<Evaluation> {
    const started = performance.now();
    let mapped: MappedRequest | undefined;
    try {
      mapped = mapCheckRequest(raw);
      const ev = this.evaluate(mapped);
      if (ev instanceof Promise) {
        const m = mapped;
        return ev.then(
          (e) => this.done(e, m, started, api),
          (err: unknown) => this.done(this.failure(err, m), m, started, api),
        );
      }
      return this.done(ev, mapped, started, api);
    } catch (err) {
      return this.done(this.failure(err, mapped), mapped, started, api);
    }
  }

  /** Evaluate an already mapped request. May throw BadRequestError or anything the engine throws. */
  evaluate(mapped: MappedRequest): Evaluation | Promise<Evaluation> {
    const requestId = mapped.requestId ?? randomUUID();
    const state = this.o.state.current();
    if (!state) return this.errorEvaluation(503, "The gateway is starting; try again shortly", requestId, ["R-SIDECAR-not-ready"]);

    // Affinity: only a verified pin for this host and vdir path reaches the engine.
    let req = mapped.request;
    const pin = this.o.affinity.pinFromCookieHeader(req.headers.cookie, req.host, req.path);
    if (pin) req = { ...req, pinnedServer: pin.server };
    req = this.withConnection(req, false);

    const candidates = this.o.engine.identityCandidates(req);
    if (candidates.length === 0) return this.finish(NO_DIRECTORY, req, mapped, state, requestId, candidates);
    const sync = this.syncDirectory;
    if (sync) return this.finish(this.applyPolicy(sync, candidates), req, mapped, state, requestId, candidates);
    return this.lookup(candidates).then((view) => this.finish(view, req, mapped, state, requestId, candidates));
  }

  /** Decide with the directory's answers, then render the decision: once, in response.ts. */
  private finish(
    view: DirectoryView,
    req: ClientRequest,
    mapped: MappedRequest,
    state: GatewayState,
    requestId: string,
    candidates: readonly { value: string; source: string }[],
  ): Evaluation {
    const defaultSite = mapped.contextExtensions[CONTEXT_SITE_KEY] ?? this.o.defaultSite;
    // No human trace on the hot path: nothing here reads it (`cas-gateway explain` builds one).
    const decision = this.o.engine.decide(req, state.topology, view, state.health, defaultSite ? { defaultSite, candidates, trace: false } : { candidates, trace: false });
    if (req.connection) this.remember(req, decision);
    const r = this.renderer.render(decision, req, mapped.casHeadersSent, state.topology);
    return withId({ ...r, response: withConfigVersion(r.response, r.name, state.version) }, requestId);
  }

  /**
   * "Why did this user get that?" against what is in force now: the same state (topology, health),
   * directory (with its deadline and failure policy), verified affinity pin and receiving site as a
   * Check, with the numbered trace on. Answers nothing to the client and writes no decision line.
   */
  async explain(request: ClientRequest, defaultSite?: string): Promise<Explanation> {
    const state = this.o.state.current();
    if (!state) return { decision: this.errorEvaluation(503, "The gateway is starting; try again shortly", "explain", ["R-SIDECAR-not-ready"]).decision };
    let req = request;
    const pin = this.o.affinity.pinFromCookieHeader(req.headers.cookie, req.host, req.path);
    if (pin) req = { ...req, pinnedServer: pin.server };
    // A request that names its connection (source address and port) is explained as that connection's.
    req = this.withConnection(req, true);
    const candidates = this.o.engine.identityCandidates(req);
    const sync = this.syncDirectory;
    const view = candidates.length === 0 ? NO_DIRECTORY : sync ? this.applyPolicy(sync, candidates) : await this.lookup(candidates);
    const site = defaultSite ?? this.o.defaultSite;
    const decision = this.o.engine.decide(req, state.topology, view, state.health, { candidates, trace: true, ...(site ? { defaultSite: site } : {}) });
    return { decision, state, ...(pin ? { pinnedServer: pin.server } : {}) };
  }

  /**
   * R-LB-8: the request with its connection, when Envoy named one (source address and port) and the
   * connection matters: it authenticates with NTLM/Negotiate, or an earlier request on it did.
   * `readOnly` (explain): look without refreshing.
   */
  private withConnection(req: ClientRequest, readOnly: boolean): ClientRequest {
    if (req.mail) return req;
    const conn = connectionKey(req.sourceAddress, req.sourcePort, req.host);
    if (conn === undefined) return req;
    // One binding per connection and application: an authenticated connection may carry OWA and EWS.
    const key = `${conn} ${serviceForRequest(req) ?? "-"}`;
    const bound = readOnly ? this.connections.peek(key) : this.connections.get(key);
    if (bound) return { ...req, connection: { key, bound } };
    return isConnectionAuthentication(req.headers.authorization) ? { ...req, connection: { key } } : req;
  }

  /** Bind the connection to the one server its first NTLM/Negotiate request was sent to (R-LB-8). */
  private remember(req: ClientRequest, d: Decision): void {
    const c = req.connection!;
    if ((d.outcome === "local" || d.outcome === "proxy") && d.targetServer && d.service) {
      const b = c.bound;
      if (b && b.server === d.targetServer && b.service === d.service) return;
      this.connections.set(c.key, {
        service: d.service,
        site: d.targetSite,
        server: d.targetServer,
        ...(d.rewrite ? { rewrite: d.rewrite } : {}),
        decidedBy: d.identity ? `${d.identity.source} ${d.identity.value}` : `the receiving site ${d.receivingSite ?? "?"}`,
      });
    } else if (c.bound && d.outcome !== "local" && d.outcome !== "proxy") {
      // Redirected or refused: the connection is not held to a server any more.
      this.connections.delete(c.key);
    }
  }

  /** A directory that also answers synchronously (DirectoryView.find), e.g. the in-memory CSV export. */
  private get syncDirectory(): DirectoryView | undefined {
    const d = this.o.directory as MailboxDirectory & Partial<DirectoryView>;
    return typeof d.find === "function" ? (d as DirectoryView) : undefined;
  }

  private applyPolicy(view: DirectoryView, candidates: readonly { value: string }[]): DirectoryView {
    let unavailable = false;
    for (const c of candidates) {
      if (view.find(c.value).status === "unavailable") {
        unavailable = true;
        break;
      }
    }
    if (!unavailable) return view;
    this.o.metrics.directoryFailures.inc({ reason: "unavailable" });
    if (this.policy === "fail-closed") return view;
    return { find: (id) => (view.find(id).status === "unavailable" ? NOT_FOUND : view.find(id)) };
  }

  /** Resolve identities within the deadline; on failure apply the policy. */
  private async lookup(candidates: readonly { value: string }[]): Promise<DirectoryView> {
    try {
      // The directory gets most of the deadline and answers from its cache when its backend misses
      // that (a hung LDAP server); the race below is the last resort for directories that cannot.
      const lookups = resolveIdentities(this.o.directory, candidates.map((c) => c.value), { deadlineMs: directoryDeadlineMs(this.lookupTimeoutMs) });
      const view = await this.deadlines.race(lookups, this.lookupTimeoutMs);
      return this.applyPolicy(view, candidates);
    } catch (err) {
      this.o.metrics.directoryFailures.inc({ reason: err instanceof LookupTimeout ? "timeout" : "error" });
      const reason = err instanceof LookupTimeout ? "directory look-up timed out" : "directory look-up failed";
      // fail-closed: the engine sees `unavailable` and refuses; local: it sees "not found" and serves locally.
      return this.policy === "local" ? { find: () => NOT_FOUND } : { find: () => ({ status: "unavailable", reason }) };
    }
  }

  private failure(err: unknown, mapped: MappedRequest | undefined): Evaluation {
    const requestId = mapped?.requestId ?? randomUUID();
    if (err instanceof BadRequestError) {
      this.o.metrics.badRequests.inc({ status: String(err.status) });
      return this.errorEvaluation(err.status, err.message, requestId, ["R-SIDECAR-bad-request"]);
    }
    this.o.logger.error({ rid: requestId, err: err instanceof Error ? err.message : String(err) }, "decision failed");
    return this.errorEvaluation(503, "The service is temporarily unavailable", requestId, ["R-SIDECAR-internal-error"]);
  }

  /** The service's own refusals (not ready, bad request, internal error): no engine, no request needed. */
  private errorEvaluation(status: number, reason: string, requestId: string, rules: `R-${string}`[]): Evaluation {
    return withId(renderError({ outcome: "error", status, reason, rules, trace: [reason] }), requestId);
  }

  private done(ev: Evaluation, mapped: MappedRequest | undefined, started: number, api: "ext_authz" | "ext_proc"): Evaluation {
    const secs = (performance.now() - started) / 1000;
    const d = ev.decision;
    if (d.outcome === "error" && d.exploit) {
      // R-SEC-1 / R-SEC-3: an attack's request shape, refused; operators alert on these lines.
      const r = mapped?.request;
      this.o.logger.warn(
        { rid: ev.requestId, api, cve: d.exploit.cve, attack: d.exploit.attack, pattern: d.exploit.pattern, rules: d.rules.join(","), method: r?.method, host: r?.host, path: r ? pathOnly(r.path) : undefined, source: r?.sourceAddress },
        `refused a ${d.exploit.attack} request (${d.exploit.cve})`,
      );
    }
    this.o.metrics.record(api, ev.name, d.rules, secs);
    const log = this.decisionLog(api, ev.name, ev.rulesText, d.outcome === "local" || d.outcome === "proxy" ? d.targetSite : undefined, d.identity?.source);
    if (log.isLevelEnabled("info")) {
      const r = mapped?.request;
      this.queuedLoggers.push(log);
      this.queuedFields.push(
        r
          ? // No query string: it is request input we have no reason to keep.
            { rid: ev.requestId, method: r.method, host: r.host, path: pathOnly(r.path), ms: Math.round(secs * 10000) / 10 }
          : { rid: ev.requestId, ms: Math.round(secs * 10000) / 10 },
      );
      if (this.queuedFields.length === 1) setImmediate(this.writeLines);
      else if (this.queuedFields.length >= MAX_QUEUED_LINES) this.writeLines();
    }
    return ev;
  }

  /**
   * Decision lines are formatted in a batch once per event-loop turn (or every MAX_QUEUED_LINES),
   * in order, each exactly as it would be one by one: between two Checks grpc-js and http2 run far
   * more code than ours, and formatting lines one at a time pays for bringing pino's back into the
   * CPU caches on every line. Lines wait at most until the end of the turn that decided them.
   */
  private readonly queuedLoggers: Logger[] = [];
  private readonly queuedFields: object[] = [];
  private readonly writeLines = (): void => {
    const loggers = this.queuedLoggers;
    const fields = this.queuedFields;
    for (let i = 0; i < fields.length; i++) loggers[i]!.info(fields[i], "decision");
    loggers.length = 0;
    fields.length = 0;
  };

  /** Write any decision lines still queued (tests, shutdown). */
  flushDecisionLines(): void {
    this.writeLines();
  }

  /**
   * The logger for a decision line: a child per API, decision, rule list, target site and identity
   * source. Those come from the engine and the topology (few distinct values), so pino serializes
   * them once per child instead of once per line; the line itself carries only the per-request fields.
   */
  private decisionLog(api: "ext_authz" | "ext_proc", decision: string, rules: string, site: string | undefined, identitySource: string | undefined): Logger {
    // Nested maps, not a joined key: no string is built per request.
    const byRules = this.lineLoggers[api];
    let byDecision = byRules.get(rules);
    if (!byDecision) {
      if (byRules.size >= 512) byRules.clear();
      byRules.set(rules, (byDecision = new Map()));
    }
    let bySite = byDecision.get(decision);
    if (!bySite) byDecision.set(decision, (bySite = new Map()));
    let bySource = bySite.get(site);
    if (!bySource) bySite.set(site, (bySource = new Map()));
    let log = bySource.get(identitySource);
    if (!log) {
      log = this.apiLog[api].child({ decision, rules, site, identitySource });
      bySource.set(identitySource, log);
    }
    return log;
  }
}

function withId(r: Rendered, requestId: string): Evaluation {
  return { name: r.name, decision: r.decision, response: r.response, requestId, rulesText: r.rulesText };
}

/** The path without its query string (log lines keep no request input we do not need). */
function pathOnly(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.slice(0, q);
}
