// Graceful Envoy drain for a pod that is being deleted (rollout, node drain, scale-down), run by the
// gateway pod's preStop hook (`cas-gateway envoy-drain`) against Envoy's admin API on loopback:
//  1. POST /healthcheck/fail: the health_check filter on the bootstrap's ready listener answers 503,
//     so the readiness probe fails and the pod leaves the Service's endpoints (no new clients);
//  2. POST /drain_listeners?graceful: Envoy discourages requests on the open connections for
//     --drain-time-s (HTTP/1.1 "Connection: close", HTTP/2 GOAWAY), then stops its listeners;
//  3. waits until Envoy counts no downstream connection (server.total_connections) or the time bound,
//     so an ActiveSync long poll already in flight can finish with its answer.
// Then it writes the done file that the sidecar's /shutdown/drained answers on (Envoy's and the mail
// proxy's preStop hooks wait there, so those processes get SIGTERM only after the drain).
import { writeFile, access } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

export interface EnvoyDrainOptions {
  /** Envoy's admin address (loopback in the pod), e.g. 127.0.0.1:9901. */
  readonly admin: { host: string; port: number };
  /** Give up waiting for connections after this long (the pod's grace period less a margin). */
  readonly timeoutMs: number;
  /** Wait at least this long after failing health checks before counting (endpoint removal propagates). */
  readonly minDrainMs: number;
  readonly pollMs?: number;
  /** Written (with a one-line summary) when the drain ends, whatever the outcome. */
  readonly doneFile?: string;
  readonly log?: (msg: string) => void;
}

export interface EnvoyDrainResult {
  /** Connections Envoy still counted when the drain ended (0 unless it timed out or Envoy vanished). */
  readonly connectionsLeft: number | undefined;
  readonly elapsedMs: number;
  readonly timedOut: boolean;
  /** Steps that failed (Envoy unreachable, admin refused); the drain still waits out its bound. */
  readonly errors: string[];
}

const ADMIN_TIMEOUT_MS = 2_000;

async function admin(o: EnvoyDrainOptions, method: "GET" | "POST", path: string): Promise<string> {
  const host = o.admin.host.includes(":") ? `[${o.admin.host}]` : o.admin.host;
  const res = await fetch(`http://${host}:${o.admin.port}${path}`, { method, signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
  const body = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${body.trim().slice(0, 200)}`);
  return body;
}

/** Parses `server.total_connections: N` out of Envoy's /stats text output. */
export function parseTotalConnections(statsText: string): number | undefined {
  const m = /^server\.total_connections:\s*(\d+)\s*$/m.exec(statsText);
  return m ? Number(m[1]) : undefined;
}

export async function drainEnvoy(o: EnvoyDrainOptions): Promise<EnvoyDrainResult> {
  const start = Date.now();
  const log = o.log ?? (() => {});
  const errors: string[] = [];
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      log(what);
    } catch (e) {
      errors.push(`${what}: ${(e as Error).message}`);
      log(`${what} failed: ${(e as Error).message}`);
    }
  };
  await step("health checks failed (POST /healthcheck/fail)", () => admin(o, "POST", "/healthcheck/fail"));
  await step("graceful listener drain started (POST /drain_listeners?graceful)", () => admin(o, "POST", "/drain_listeners?graceful"));
  const deadline = start + o.timeoutMs;
  await sleep(Math.max(0, Math.min(o.minDrainMs, deadline - Date.now())));
  let left: number | undefined;
  let unreachable = 0;
  for (;;) {
    try {
      left = parseTotalConnections(await admin(o, "GET", "/stats?filter=%5Eserver%5C.total_connections%24"));
      unreachable = 0;
    } catch (e) {
      // Envoy gone (exited or crashed): nothing is left to drain once it stays unreachable.
      if (++unreachable >= 3) {
        errors.push(`Envoy admin unreachable: ${(e as Error).message}`);
        left = undefined;
        break;
      }
    }
    if (left === 0) break;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(o.pollMs ?? 1_000, Math.max(1, deadline - Date.now())));
  }
  const result: EnvoyDrainResult = { connectionsLeft: left, elapsedMs: Date.now() - start, timedOut: left !== 0 && left !== undefined, errors };
  log(`drain ended after ${Math.round(result.elapsedMs / 1000)} s: ${left === undefined ? "connections unknown" : `${left} connection(s) left`}${result.timedOut ? " (time bound reached)" : ""}`);
  if (o.doneFile) await writeFile(o.doneFile, `${JSON.stringify(result)}\n`);
  return result;
}

/**
 * Resolves true once `file` exists (the drain has ended), or false after `maxMs` — the preStop
 * hooks of Envoy and the mail proxy block on this so they are stopped after the drain, never forever.
 */
export async function waitForDrained(file: string, maxMs: number, pollMs = 500, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    try {
      await access(file);
      return true;
    } catch {
      /* not yet */
    }
    if (Date.now() >= deadline || signal?.aborted) return false;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** Longest a /shutdown/drained caller may ask to wait (seconds). */
export const MAX_DRAINED_WAIT_S = 3_600;

/**
 * The admin route GET /shutdown/drained?timeout=SECONDS: answers 200 "drained" once the drain's done
 * file exists, or 200 "not drained" when the wait ends first (the kubelet then carries on with
 * SIGTERM either way; a preStop hook must never hold a pod past its grace period by itself).
 * It only waits: anyone who can reach the admin port learns nothing and changes nothing.
 */
export function drainedRoute(file: string) {
  return async (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): Promise<void> => {
    const q = new URL(req.url ?? "/", "http://x").searchParams.get("timeout");
    const seconds = q === null ? 600 : Number(q);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_DRAINED_WAIT_S) {
      res.writeHead(400, { "content-type": "text/plain" }).end(`timeout must be 0..${MAX_DRAINED_WAIT_S} seconds\n`);
      return;
    }
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const drained = await waitForDrained(file, seconds * 1000, 500, gone.signal);
    if (!res.writableEnded) res.writeHead(200, { "content-type": "text/plain" }).end(drained ? "drained\n" : "not drained (time bound)\n");
  };
}
