// Active health prober (Exchange Managed Availability style), run by the control plane.
//
// For every server and service of a Topology:
// - HTTP services: GET <InternalUrl origin>/<first path segment of the InternalUrl>/healthcheck.htm,
//   healthy on 200 (what Exchange 2013+ and load balancers use). Exchange 2003/2007/2010 have no
//   healthcheck.htm; for them the probe GETs the InternalUrl path itself and any answer below 500
//   (200, 302, 401, ...) means the directory is served. `httpCheck: "healthcheck"` forces the 2013 check
//   for every version.
// - Pop3/Imap4 (R-POP-5): TCP connect to each internalConnectionSettings endpoint (TLS first when its
//   encryption is Ssl) and read the greeting: "+OK" (POP3) or "* OK" (IMAP4).
// Where it connects: ServerInfo.address when it differs from the FQDN (host or host:port; the URL's or
// the connection setting's port when none), else the URL / setting host. The URL host is still sent as
// Host header and TLS SNI. TLS certificates are validated unless the server has insecureSkipVerify (R-GEN-3).
// A target turns unhealthy after `unhealthyThreshold` consecutive failures and healthy again after
// `healthyThreshold` consecutive successes; new targets start healthy (absent = healthy).
// A server whose every probed service is down is also down as a whole ("server" key).
// Bounded: every probe has a timeout, rounds never overlap, at most `concurrency` probes run at once,
// and response bodies are not read.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import pino, { type Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { MAIL_SERVICES, type Service } from "../../crds/index.js";
import { healthFromDown, healthKey, type HealthView } from "../../model/health.js";
import type { ServerInfo, Topology } from "../../model/topology/types.js";

export interface ProberOptions {
  /** Time between the starts of two rounds (default 10 s). */
  readonly intervalMs?: number;
  /** Per-probe timeout (default 2 s). */
  readonly timeoutMs?: number;
  /** Consecutive failures before a target is marked down (default 2). */
  readonly unhealthyThreshold?: number;
  /** Consecutive successes before a down target is marked up again (default 2). */
  readonly healthyThreshold?: number;
  /** Probes in flight at once (default 16). */
  readonly concurrency?: number;
  /** "auto" (default): healthcheck.htm for 2013+, the directory itself for older versions. */
  readonly httpCheck?: "auto" | "healthcheck";
  /** Extra trusted CA certificates (PEM) for HTTPS and TLS probes. */
  readonly ca?: string | readonly string[];
  readonly registry?: Registry;
  readonly logger?: Logger;
}

export type ProbeKind = "http" | "pop3" | "imap4";

/** One thing to probe: a service on a server. */
export interface ProbeTarget {
  /** "server/Service" (model/health.ts healthKey). */
  readonly key: string;
  readonly server: string;
  readonly service: Service;
  readonly kind: ProbeKind;
  /** HTTP: the URL requested (with the URL host); mail: host:port of the connection setting. */
  readonly url: string;
  /** Where the TCP connection goes. */
  readonly connectHost: string;
  readonly connectPort: number;
  /** TLS on connect (https, or mail Ssl). */
  readonly tls: boolean;
  /** Host header and SNI. */
  readonly serverName: string;
  readonly insecureSkipVerify: boolean;
  /** The server's own CA bundle (spec.tls.caBundle), instead of the prober's. */
  readonly ca?: string;
  /** HTTP: which answers count as healthy. */
  readonly expect: "200" | "below-500";
  /** Mail: further endpoints of the same service (all must answer). */
  readonly more?: readonly ProbeTarget[];
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface HealthTransition {
  readonly key: string;
  readonly healthy: boolean;
  readonly detail: string;
}

export interface HealthChangeEvent {
  readonly view: HealthView & { readonly down: ReadonlySet<string> };
  /** Sorted down-list: "server" and "server/Service" keys. */
  readonly down: readonly string[];
  readonly transitions: readonly HealthTransition[];
  readonly generation: number;
}

interface TargetState {
  target: ProbeTarget;
  healthy: boolean;
  successes: number;
  failures: number;
  last?: ProbeResult;
}

const DEFAULT_PORT: Record<string, number> = { "http:": 80, "https:": 443 };

/** Split "host", "host:port", "[v6]:port". */
function splitAddress(address: string): { host: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  if (v6) return { host: v6[1], ...(v6[2] ? { port: Number(v6[2]) } : {}) };
  const m = /^([^:]+):(\d+)$/.exec(address);
  if (m) return { host: m[1], port: Number(m[2]) };
  return { host: address };
}

/** The probe targets of a topology, sorted by key. */
export function probeTargets(topology: Topology, httpCheck: "auto" | "healthcheck" = "auto"): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const s of topology.servers.values()) {
    const addr = s.address !== s.fqdn ? splitAddress(s.address) : undefined;
    for (const [service, v] of s.vdirs) {
      const key = healthKey(s.name, service);
      if ((MAIL_SERVICES as readonly string[]).includes(service)) {
        const kind: ProbeKind = service === "Pop3" ? "pop3" : "imap4";
        const targets = v.internalConnectionSettings.map(
          (c): ProbeTarget => ({
            key,
            server: s.name,
            service,
            kind,
            url: `${c.hostname}:${c.port}`,
            connectHost: addr?.host ?? c.hostname,
            connectPort: c.port,
            tls: c.encryption === "Ssl",
            serverName: c.hostname,
            insecureSkipVerify: s.insecureSkipVerify,
            ...(s.caBundle !== undefined ? { ca: s.caBundle } : {}),
            expect: "200",
          }),
        );
        if (targets.length > 0) out.push({ ...targets[0], ...(targets.length > 1 ? { more: targets.slice(1) } : {}) });
        continue;
      }
      if (!v.internalUrl) continue;
      out.push(httpTarget(s, service, v.internalUrl, addr, httpCheck));
    }
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function httpTarget(
  s: ServerInfo,
  service: Service,
  internalUrl: string,
  addr: { host: string; port?: number } | undefined,
  httpCheck: "auto" | "healthcheck",
): ProbeTarget {
  const u = new URL(internalUrl);
  const segment = u.pathname.split("/").find((p) => p.length > 0) ?? "";
  const useHealthcheck = httpCheck === "healthcheck" || s.version >= 2013;
  const path = useHealthcheck ? `/${segment ? `${segment}/` : ""}healthcheck.htm` : u.pathname || "/";
  const urlPort = u.port ? Number(u.port) : DEFAULT_PORT[u.protocol];
  return {
    key: healthKey(s.name, service),
    server: s.name,
    service,
    kind: "http",
    url: `${u.protocol}//${u.host}${path}`,
    connectHost: addr?.host ?? u.hostname.replace(/^\[|\]$/g, ""),
    connectPort: addr?.port ?? urlPort,
    tls: u.protocol === "https:",
    serverName: u.hostname,
    insecureSkipVerify: s.insecureSkipVerify,
    ...(s.caBundle !== undefined ? { ca: s.caBundle } : {}),
    expect: useHealthcheck ? "200" : "below-500",
  };
}

/**
 * One probe, never throws, always ends within timeoutMs (plus a little), or at once when `signal`
 * aborts (the prober stopping: its socket is destroyed rather than waited for).
 */
export function probe(t: ProbeTarget, timeoutMs: number, ca?: string | readonly string[], signal?: AbortSignal): Promise<ProbeResult> {
  const started = performance.now();
  const done = (ok: boolean, detail: string): ProbeResult => ({ ok, detail, ms: performance.now() - started });
  const caList = ca === undefined ? undefined : typeof ca === "string" ? [ca] : [...ca];
  if (signal?.aborted) return Promise.resolve(done(false, "stopped"));
  if (t.kind === "http") return probeHttp(t, timeoutMs, caList, done, signal);
  return probeMail(t, timeoutMs, caList, done, signal).then(async (r) => {
    for (const m of t.more ?? []) {
      if (!r.ok || signal?.aborted) break;
      r = await probeMail(m, timeoutMs, caList, done, signal);
    }
    return r;
  });
}

type Done = (ok: boolean, detail: string) => ProbeResult;

function probeHttp(t: ProbeTarget, timeoutMs: number, ca: string[] | undefined, done: Done, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const u = new URL(t.url);
    let settled = false;
    const onAbort = () => finish(done(false, "stopped"));
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      req.destroy();
      resolve(r);
    };
    const options: https.RequestOptions = {
      host: t.connectHost,
      port: t.connectPort,
      path: u.pathname + u.search,
      method: "GET",
      headers: { host: u.host, "user-agent": "cas-gateway-prober", connection: "close" },
      agent: false,
      ...(t.tls
        ? {
            servername: net.isIP(t.serverName) ? undefined : t.serverName,
            rejectUnauthorized: !t.insecureSkipVerify,
            ...((t.ca ?? ca) ? { ca: t.ca ?? ca } : {}),
          }
        : {}),
    };
    const req = (t.tls ? https : http).request(options, (res) => {
      const status = res.statusCode ?? 0;
      const ok = t.expect === "200" ? status === 200 : status > 0 && status < 500;
      res.resume();
      finish(done(ok, `HTTP ${status}`));
    });
    const timer = setTimeout(() => finish(done(false, `timeout after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) => finish(done(false, err.code ?? err.message)));
    req.end();
  });
}

function probeMail(t: ProbeTarget, timeoutMs: number, ca: string[] | undefined, done: Done, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let buf = "";
    const expected = t.kind === "pop3" ? "+OK" : "* OK";
    const onAbort = () => finish(done(false, "stopped"));
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      // Polite goodbye when the service answered; then close either way.
      if (r.ok) socket.end(t.kind === "pop3" ? "QUIT\r\n" : "a1 LOGOUT\r\n");
      socket.destroy();
      resolve(r);
    };
    const socket: net.Socket = t.tls
      ? tls.connect({
          host: t.connectHost,
          port: t.connectPort,
          servername: net.isIP(t.serverName) ? undefined : t.serverName,
          rejectUnauthorized: !t.insecureSkipVerify,
          ...((t.ca ?? ca) ? { ca: t.ca ?? ca } : {}),
        })
      : net.connect({ host: t.connectHost, port: t.connectPort });
    const timer = setTimeout(() => finish(done(false, `no greeting within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0 && buf.length < 1024) return;
      const line = (nl < 0 ? buf : buf.slice(0, nl)).replace(/\r$/, "");
      const ok = line.startsWith(expected);
      finish(done(ok, ok ? `greeting ${JSON.stringify(line.slice(0, 60))}` : `unexpected greeting ${JSON.stringify(line.slice(0, 60))}`));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => finish(done(false, err.code ?? err.message)));
    socket.on("close", () => finish(done(false, "connection closed before a greeting")));
  });
}

/** Runs probes on a schedule and keeps the health view. Implements the control plane's DownListSource. */
export class HealthProber {
  private readonly o: Required<Omit<ProberOptions, "ca" | "registry" | "logger">> & Pick<ProberOptions, "ca">;
  private readonly log: Logger;
  private readonly states = new Map<string, TargetState>();
  private readonly listeners = new Set<(down: readonly string[], event: HealthChangeEvent) => void>();
  private downList: readonly string[] = [];
  private gen = 0;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  /** Aborts the probes of the round in flight when the prober stops. */
  private abort: AbortController | undefined;
  private running = false;
  readonly registry: Registry;
  private readonly healthyGauge: Gauge<"server" | "service">;
  private readonly probes: Counter<"server" | "service" | "result">;
  private readonly downGauge: Gauge;

  constructor(topology: Topology, options: ProberOptions = {}) {
    this.o = {
      intervalMs: options.intervalMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 2_000,
      unhealthyThreshold: Math.max(1, options.unhealthyThreshold ?? 2),
      healthyThreshold: Math.max(1, options.healthyThreshold ?? 2),
      concurrency: Math.max(1, options.concurrency ?? 16),
      httpCheck: options.httpCheck ?? "auto",
      ca: options.ca,
    };
    this.log = options.logger ?? pino({ level: "silent" });
    this.registry = options.registry ?? new Registry();
    this.healthyGauge = new Gauge({
      name: "cas_gateway_backend_healthy",
      help: "1 when the active health probe considers the service on the server healthy, else 0.",
      labelNames: ["server", "service"],
      registers: [this.registry],
    });
    this.probes = new Counter({
      name: "cas_gateway_health_probes_total",
      help: "Health probes run, by result (success or failure).",
      labelNames: ["server", "service", "result"],
      registers: [this.registry],
    });
    this.downGauge = new Gauge({
      name: "cas_gateway_backends_down",
      help: "Number of server/service pairs currently marked down.",
      registers: [this.registry],
    });
    this.setTopology(topology);
  }

  /** New topology: keeps the state of targets that did not change, drops the rest. */
  setTopology(topology: Topology): void {
    const next = new Map<string, TargetState>();
    for (const t of probeTargets(topology, this.o.httpCheck)) {
      const old = this.states.get(t.key);
      const same = old && JSON.stringify(old.target) === JSON.stringify(t);
      next.set(t.key, same ? old : { target: t, healthy: true, successes: 0, failures: 0 });
      if (!same) this.healthyGauge.set({ server: t.server, service: t.service }, 1);
    }
    for (const [key, st] of this.states) {
      if (!next.has(key)) this.healthyGauge.remove({ server: st.target.server, service: st.target.service });
    }
    this.states.clear();
    for (const [k, v] of next) this.states.set(k, v);
    this.recompute([]);
  }

  targets(): readonly ProbeTarget[] {
    return [...this.states.values()].map((s) => s.target);
  }

  /** Keys "server" or "server/Service" currently down, sorted. */
  down(): readonly string[] {
    return this.downList;
  }

  view(): HealthView & { readonly down: ReadonlySet<string> } {
    return healthFromDown(this.downList);
  }

  /** Last probe result of a target. */
  lastResult(key: string): ProbeResult | undefined {
    return this.states.get(key)?.last;
  }

  /** Called when the down-list changes. */
  subscribe(listener: (down: readonly string[], event: HealthChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = async () => {
      const began = Date.now();
      await this.probeOnce();
      if (!this.running) return;
      this.timer = setTimeout(loop, Math.max(0, this.o.intervalMs - (Date.now() - began)));
    };
    void loop();
  }

  /**
   * Stops at once: the round in flight is cut short (its open probe sockets destroyed, nothing more
   * taken from its queue, no result recorded), so shutdown does not wait for probes to time out.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    await this.round;
  }

  /** One round over every target (rounds never overlap: a call during a round waits for it). */
  probeOnce(): Promise<void> {
    if (this.round) return this.round;
    this.round = this.runRound().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  private async runRound(): Promise<void> {
    const queue = [...this.states.values()];
    const transitions: HealthTransition[] = [];
    const abort = (this.abort = new AbortController());
    const worker = async () => {
      for (let st = queue.shift(); st && !abort.signal.aborted; st = queue.shift()) {
        const r = await probe(st.target, this.o.timeoutMs, this.o.ca, abort.signal);
        if (abort.signal.aborted) return; // stopping: a cut-short probe says nothing about the server
        if (this.states.get(st.target.key) !== st) continue; // target replaced meanwhile
        st.last = r;
        this.probes.inc({ server: st.target.server, service: st.target.service, result: r.ok ? "success" : "failure" });
        if (r.ok) {
          st.successes++;
          st.failures = 0;
          if (!st.healthy && st.successes >= this.o.healthyThreshold) {
            st.healthy = true;
            transitions.push({ key: st.target.key, healthy: true, detail: r.detail });
          }
        } else {
          st.failures++;
          st.successes = 0;
          if (st.healthy && st.failures >= this.o.unhealthyThreshold) {
            st.healthy = false;
            transitions.push({ key: st.target.key, healthy: false, detail: r.detail });
          }
        }
        this.healthyGauge.set({ server: st.target.server, service: st.target.service }, st.healthy ? 1 : 0);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, queue.length) }, worker));
    if (this.abort === abort) this.abort = undefined;
    if (abort.signal.aborted) return;
    for (const t of transitions) this.log.warn({ target: t.key, healthy: t.healthy, detail: t.detail }, "health changed");
    this.recompute(transitions);
  }

  private recompute(transitions: readonly HealthTransition[]): void {
    const down = new Set<string>();
    const perServer = new Map<string, { total: number; down: number }>();
    for (const st of this.states.values()) {
      const c = perServer.get(st.target.server) ?? { total: 0, down: 0 };
      c.total++;
      if (!st.healthy) {
        c.down++;
        down.add(st.target.key);
      }
      perServer.set(st.target.server, c);
    }
    for (const [server, c] of perServer) if (c.total > 0 && c.down === c.total) down.add(server);
    const list = [...down].sort();
    this.downGauge.set(list.filter((k) => k.includes("/")).length);
    if (list.join("\n") === this.downList.join("\n")) return;
    this.downList = list;
    this.gen++;
    const event: HealthChangeEvent = { view: healthFromDown(list), down: list, transitions, generation: this.gen };
    for (const l of this.listeners) {
      try {
        l(list, event);
      } catch (err) {
        this.log.error({ err }, "health listener failed");
      }
    }
  }
}
