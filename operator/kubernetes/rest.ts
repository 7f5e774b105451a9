// A small JSON client for the Kubernetes REST API on top of @kubernetes/client-node's KubeConfig
// (which supplies the server URL, TLS material and credentials, refreshing service-account tokens).
// The generated typed clients are not used for our custom resources because they cannot send a JSON
// merge patch to /status without per-call header middleware, and they turn Lease MicroTimes into
// millisecond Dates that the API server rejects; plain JSON keeps exactly what goes on the wire.
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
    /** The server's Retry-After (seconds), sent with 429 and some 5xx answers. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${method} ${path}: ${statusCode} ${reason}: ${message}`);
  }
}

/** Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * Errors worth retrying after a pause: 429 Too Many Requests, 5xx (the API server or etcd briefly
 * unavailable), and failures with no HTTP answer (timeouts, connection reset/refused). 4xx answers
 * other than 429 say the request itself is wrong and are not retried.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.statusCode === 429 || err.statusCode >= 500;
  return err instanceof Error;
}

/** Per-call options: an abort signal (the leader elector bounds each renew by its renew deadline). */
export interface KubeCallOptions {
  readonly signal?: AbortSignal;
  /** This call's timeout (ms), instead of the client's default. */
  readonly timeoutMs?: number;
}

export interface KubeRestOptions {
  /** Per-request timeout (ms). */
  readonly timeoutMs?: number;
}

export class KubeRest {
  private readonly timeoutMs: number;
  /** Keep-alive agents, one per TLS identity (KubeConfig makes a fresh agent per call). */
  private agent: { key: string; agent: HttpAgent } | undefined;
  constructor(
    readonly kc: KubeConfig,
    opts: KubeRestOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  get server(): string {
    const c = this.kc.getCurrentCluster();
    if (!c) throw new Error("kubeconfig has no current cluster");
    return c.server.replace(/\/+$/, "");
  }

  async get<T>(path: string, query?: Record<string, string | undefined>, call?: KubeCallOptions): Promise<T> {
    return this.request<T>("GET", path, undefined, undefined, query, call);
  }
  async post<T>(path: string, body: unknown, call?: KubeCallOptions): Promise<T> {
    return this.request<T>("POST", path, body, "application/json", undefined, call);
  }
  async put<T>(path: string, body: unknown, call?: KubeCallOptions): Promise<T> {
    return this.request<T>("PUT", path, body, "application/json", undefined, call);
  }
  async mergePatch<T>(path: string, body: unknown, call?: KubeCallOptions): Promise<T> {
    return this.request<T>("PATCH", path, body, "application/merge-patch+json", undefined, call);
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    query?: Record<string, string | undefined>,
    call?: KubeCallOptions,
  ): Promise<T> {
    if (call?.signal?.aborted) throw new Error(`${method} ${path}: aborted before it was sent`);
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const opts: RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string> | undefined), accept: "application/json" };
    if (payload) {
      headers["content-type"] = contentType ?? "application/json";
      headers["content-length"] = String(payload.length);
    }
    const doRequest = url.protocol === "https:" ? httpsRequest : httpRequest;
    const agent = this.agentFor(url.protocol, opts);
    const timeoutMs = call?.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const req = doRequest(
        url,
        { ...opts, agent, method, headers, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(json as T);
            const s = (json ?? {}) as { reason?: string; message?: string };
            const retryAfter = parseRetryAfter(typeof res.headers["retry-after"] === "string" ? res.headers["retry-after"] : undefined);
            reject(new KubeApiError(status, s.reason ?? res.statusMessage ?? "Error", s.message ?? text.slice(0, 500), method, url.pathname, retryAfter));
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs} ms`)));
      const signal = call?.signal;
      if (signal) {
        const abort = () => req.destroy(new Error(`${method} ${url.pathname}: aborted (${String(signal.reason ?? "deadline")})`));
        signal.addEventListener("abort", abort, { once: true });
        req.on("close", () => signal.removeEventListener("abort", abort));
      }
      req.on("error", reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  private agentFor(protocol: string, opts: RequestOptions): HttpAgent {
    const tls = opts as RequestOptions & { ca?: unknown; cert?: unknown; key?: unknown; rejectUnauthorized?: boolean; servername?: string };
    const key = JSON.stringify([protocol, String(tls.ca ?? ""), String(tls.cert ?? ""), String(tls.key ?? ""), tls.rejectUnauthorized, tls.servername]);
    if (this.agent?.key === key) return this.agent.agent;
    this.agent?.agent.destroy();
    const common = { keepAlive: true, maxSockets: 8 };
    const agent =
      protocol === "https:"
        ? new HttpsAgent({
            ...common,
            ...(tls.ca !== undefined ? { ca: tls.ca as string } : {}),
            ...(tls.cert !== undefined ? { cert: tls.cert as string } : {}),
            ...(tls.key !== undefined ? { key: tls.key as string } : {}),
            ...(tls.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
            ...(tls.servername ? { servername: tls.servername } : {}),
          })
        : new HttpAgent(common);
    this.agent = { key, agent };
    return agent;
  }

  /** Close idle keep-alive connections. */
  close(): void {
    this.agent?.agent.destroy();
    this.agent = undefined;
  }
}

export function isStatus(err: unknown, code: number): boolean {
  return err instanceof KubeApiError && err.statusCode === code;
}

/** Collection path for a resource: /api/v1/... for the core group, /apis/<group>/<version>/... otherwise. */
export function resourcePath(group: string, version: string, plural: string, namespace?: string, name?: string, sub?: string): string {
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const n = name ? `/${encodeURIComponent(name)}` : "";
  const s = name && sub ? `/${sub}` : "";
  return `${base}${ns}/${plural}${n}${s}`;
}
