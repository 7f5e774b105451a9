// ADS change path benchmark on a generated organisation of 100 sites, 1,000 servers and 10,000
// virtual directories (issue 8): a one-object change must reach a connected client as a
// DiscoveryResponse with p99 < 100 ms (SotW and Delta), and the control plane's resident memory
// must stay under 512 MB.
//
// The control plane runs in its own process (bench/xds-control-plane-child.ts: the real
// ControlPlane + AdsServer, as the operator runs them); the client, standing in for Envoy, runs
// here. The clock starts here when the change is sent to the child and stops when the client has
// the response, so the timed window covers the whole product path: the changed object delivered
// by the provider → buildTopology → translation → GatewayState → Snapshot → SotW/Delta response
// encoding → gRPC/HTTP/2 → the client's receipt (plus the IPC hop into the child, < 1 ms).
// XDS_BENCH_CHANGES sets the number of changes per mode (default 120). The first
// XDS_BENCH_WARMUP changes after start (default 20, SotW client connected) are reported in their
// own row and not in the per-mode figures: right after start the just-compiled change path and the
// collection of the start-up translation's garbage make them slower (see docs/xds-server.md).
// The control plane process gets the image's glibc malloc settings (Dockerfile ENV MALLOC_*); the
// client, standing in for Envoy, runs with glibc's defaults.
import { fork, type ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { shortType } from "../operator/xds/server/resources.js";
import type { ChildMessage } from "./xds-control-plane-child.js";
import { imageMallocEnv } from "./image-env.js";
import { startAdsClient, type Received } from "./xds-client.js";
import { generateOrganisation } from "./xds-org-generator.js";
import { median, percentile, type BenchRow } from "./types.js";

type Ready = Extract<ChildMessage, { ready: true }>;
type Published = Extract<ChildMessage, { published: number }>;

/** A queue of messages with a bounded wait. */
class Inbox<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  push(m: T): void {
    this.items.push(m);
    this.wake?.();
  }
  async next(what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (!this.items.length) {
      if (Date.now() > deadline) throw new Error(`xds-server bench: no ${what} within ${timeoutMs / 1000} s`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 500);
      });
    }
    return this.items.shift()!;
  }
}

export default async function bench(): Promise<BenchRow[]> {
  const changes = Number(process.env.XDS_BENCH_CHANGES ?? 120);
  const warmup = Number(process.env.XDS_BENCH_WARMUP ?? 20);
  const { vdirIndexes } = generateOrganisation(100, 10, 10); // the same organisation the child generates
  const mallocEnv = imageMallocEnv();
  if (Object.keys(mallocEnv).length === 0) throw new Error("xds-server bench: the Dockerfile has no ENV MALLOC_* lines");
  const child: ChildProcess = fork(fileURLToPath(new URL("./xds-control-plane-child.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx", ...(process.env.XDS_BENCH_CHILD_ARGS ?? "").split(" ").filter(Boolean)],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, ...mallocEnv },
  });
  const fromChild = new Inbox<ChildMessage>();
  child.on("message", (m: ChildMessage) => fromChild.push(m));
  const nextFromChild = async (what: string): Promise<ChildMessage> => {
    const m = await fromChild.next(what, 120_000);
    if ("error" in m) throw new Error(`control plane: ${m.error}`);
    return m;
  };
  try {
    const ready = (await nextFromChild("ready message")) as Ready;
    const rssSamples: number[] = [];
    let changeNo = 0;

    const measure = async (mode: "sotw" | "delta", count: number, offset = 0) => {
      const received = new Inbox<Received>();
      let clientError: Error | undefined;
      const client = await startAdsClient({
        port: ready.port,
        mode,
        types: ready.types,
        names: ready.names,
        onResponse: (r) => received.push(r),
        onError: (e) => (clientError = e),
      });
      const firstMs: number[] = [];
      const allMs: number[] = [];
      const serverMs: number[] = [];
      const sizes: number[] = [];
      for (let i = 0; i < count; i++) {
        if (clientError) throw clientError;
        const index = vdirIndexes[((i + offset) * 37 + (mode === "delta" ? 11 : 0)) % vdirIndexes.length]!;
        const start = performance.now();
        child.send({ change: { index, port: 8000 + (changeNo++ % 1000) } });
        const pub = (await nextFromChild("publish report")) as Published;
        serverMs.push(pub.serverMs);
        rssSamples.push(pub.rss);
        const pending = new Set(pub.changedTypes);
        if (pending.size === 0) throw new Error("a one-object change changed no xDS type");
        let first = true;
        while (pending.size) {
          const r = await received.next(`${mode} response`);
          if (first) {
            firstMs.push(r.at - start);
            sizes.push(r.bytes);
            first = false;
          }
          pending.delete(r.typeUrl);
          if (!pending.size) allMs.push(r.at - start);
        }
        await new Promise((r) => setTimeout(r, 20)); // let the ACKs land before the next change
      }
      client.close();
      return { firstMs, allMs, serverMs, sizes };
    };

    const warm = warmup > 0 ? await measure("sotw", warmup, 5000) : undefined;
    const sotw = await measure("sotw", changes);
    const delta = await measure("delta", changes);
    child.send({ memory: true });
    const mem = (await nextFromChild("memory report")) as Extract<ChildMessage, { memory: NodeJS.MemoryUsage }>;
    const childRssMb = mem.memory.rss / 1048576;
    const childPeakMb = Math.max(...rssSamples, mem.memory.rss) / 1048576;
    const clientRssMb = process.memoryUsage().rss / 1048576;
    const load = loadavg()
      .map((x) => x.toFixed(1))
      .join("/");
    const counts = ready.types.map((t) => `${ready.counts[t]} ${shortType(t)}`).join(", ");
    const note = `${changes} changes; ${counts}; ${(ready.bytes / 1e6).toFixed(1)} MB encoded; control plane with ${Object.entries(mallocEnv).map(([k, v]) => `${k}=${v}`).join(" ")}; load avg ${load} on ${cpus().length} CPUs`;
    const row = (metric: string, xs: number[], extra: string, withTarget: boolean): BenchRow => ({
      suite: "xds-server",
      metric,
      value: median(xs),
      unit: "ms",
      ...(withTarget ? { target: "p99 < 100 ms", pass: percentile(xs, 99) < 100 } : {}),
      note: `p99 ${percentile(xs, 99).toFixed(1)} ms; max ${Math.max(...xs).toFixed(1)} ms;${extra} ${note}`,
    });
    const mb = (xs: number[]) => ` response ${(median(xs) / 1e6).toFixed(2)} MB;`;
    return [
      row("one-object change → SotW DiscoveryResponse at client (whole path)", sotw.firstMs, mb(sotw.sizes), true),
      row("one-object change → Delta DiscoveryResponse at client (whole path)", delta.firstMs, mb(delta.sizes), true),
      row("one-object change → every changed type at client (SotW)", sotw.allMs, "", false),
      row("one-object change → every changed type at client (Delta)", delta.allMs, "", false),
      row("control plane: provider delivery → snapshot published + responses queued (SotW run)", sotw.serverMs, "", false),
      row("control plane: provider delivery → snapshot published + responses queued (Delta run)", delta.serverMs, "", false),
      ...(warm
        ? [
            {
              ...row(`first ${warmup} changes after start → SotW response at client (warm-up, not in the rows above)`, warm.firstMs, "", false),
              note: `max ${Math.max(...warm.firstMs).toFixed(1)} ms; control plane work median ${median(warm.serverMs).toFixed(1)} ms, max ${Math.max(...warm.serverMs).toFixed(1)} ms`,
            },
          ]
        : []),
      { suite: "xds-server", metric: "control plane start: first topology + full translation + snapshot", value: ready.firstMs, unit: "ms", note: "one run, cold (includes loading Envoy's protos)" },
      {
        suite: "xds-server",
        metric: "control plane process resident memory (peak over the run)",
        value: Math.round(childPeakMb),
        unit: "MB",
        target: "< 512 MB",
        pass: childPeakMb < 512,
        note: `at the end ${Math.round(childRssMb)} MB, heap used ${Math.round(mem.memory.heapUsed / 1048576)} MB; the bench client's process (not the control plane) ${Math.round(clientRssMb)} MB`,
      },
    ];
  } finally {
    child.send({ stop: true });
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, 5000);
      child.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
