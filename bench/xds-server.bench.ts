// ADS server benchmark: a generated organisation of 100 sites, 1,000 servers and 10,000 virtual
// directories. A one-object change (one virtual directory's internalUrl) is turned into a new
// snapshot and must reach a connected client (SotW and Delta) as a DiscoveryResponse with
// p99 < 100 ms; resident memory < 512 MB. Measured from the moment the new resources exist
// (Snapshot construction + cache update + push + client decode) to the client's receipt of the
// first response and to full convergence (every changed type received). Topology build and
// translation times are reported beside it (the translator's own bench owns the < 0.5 s target).
// The client runs in a worker thread (Envoy runs in its own process), receipt times are wall-clock.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { pino } from "pino";
import { buildTopology } from "../operator/topology/build.js";
import type { Topology } from "../operator/topology/types.js";
import { gatewayStateResource } from "../operator/xds/server/gateway-state.js";
import { cpus, loadavg } from "node:os";
import { Worker } from "node:worker_threads";
import { encodeEnvoy } from "../operator/xds/server/protos.js";
import { shortType, TYPE_URLS, type XdsResource } from "../operator/xds/server/resources.js";
import { AdsServer } from "../operator/xds/server/server.js";
import { Snapshot } from "../operator/xds/server/snapshot.js";
import { serverClusterName } from "../operator/topology/names.js";
import type { ApiObject } from "../crds/index.js";
import { changeOne, generateOrganisation } from "./xds-org-generator.js";
import { median, percentile, type BenchRow } from "./types.js";

type Build = (topology: Topology) => XdsResource[];

/** The real translator when it loads and translates; otherwise a labelled stand-in. */
async function resourceBuilder(): Promise<{ build: Build; label: string }> {
  try {
    const spec = "../operator/xds/translate/index.js";
    const mod = (await import(spec)) as { translate?: (t: Topology, o: unknown) => Record<string, readonly XdsResource[]> };
    if (typeof mod.translate === "function") {
      const translate = mod.translate;
      const opts = { sidecar: { address: "127.0.0.1", port: 9001 }, mailProxy: { address: "127.0.0.1", pop3Port: 1110, imap4Port: 1143 } };
      const build: Build = (t) => {
        const r = translate(t, opts);
        return [...r.clusters!, ...r.endpoints!, ...r.listeners!, ...r.routes!, ...(r.secrets ?? [])];
      };
      return { build, label: "translator" };
    }
  } catch (err) {
    process.stderr.write(`xds-server bench: translator not usable (${err instanceof Error ? err.message : String(err)}); using stand-in resources\n`);
  }
  // Stand-in: one EDS cluster + ClusterLoadAssignment per virtual directory (10,000 of each).
  const build: Build = (t) => {
    const out: XdsResource[] = [];
    for (const s of t.servers.values())
      for (const v of s.vdirs.values()) {
        const name = serverClusterName(s.name, v.service);
        const url = v.internalUrl ? new URL(v.internalUrl) : undefined;
        out.push({
          name,
          typeUrl: TYPE_URLS.cluster,
          version: "",
          encoded: encodeEnvoy("envoy.config.cluster.v3.Cluster", { name, type: "EDS", eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: { seconds: 5 } }),
        });
        out.push({
          name,
          typeUrl: TYPE_URLS.endpoint,
          version: "",
          encoded: encodeEnvoy("envoy.config.endpoint.v3.ClusterLoadAssignment", {
            cluster_name: name,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: s.address, port_value: Number(url?.port || 443) } } } }] }],
          }),
        });
      }
    return out;
  };
  return { build, label: "stand-in resources (translator not available)" };
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const XDS_TYPES: string[] = [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route];

export default async function bench(): Promise<BenchRow[]> {
  const changes = Number(process.env.XDS_BENCH_CHANGES ?? 40);
  const { objects: base, vdirIndexes } = generateOrganisation(100, 10, 10);
  const { build, label } = await resourceBuilder();
  const server = new AdsServer({ logger: pino({ level: "silent" }) });
  const port = await server.listen(0);
  const rows: BenchRow[] = [];
  const buildMs: number[] = [];
  const translateMs: number[] = [];

  let objects: ApiObject[] = base;
  const publish = (objs: ApiObject[]): { resources: XdsResource[]; topo: Topology } => {
    const t0 = performance.now();
    const topo = buildTopology(objs);
    const t1 = performance.now();
    const resources = build(topo);
    resources.push(gatewayStateResource(objs, topo.version, []));
    buildMs.push(t1 - t0);
    translateMs.push(performance.now() - t1);
    return { resources, topo };
  };
  const first = publish(objects);
  server.cache.setSnapshot("*", new Snapshot(first.resources, first.topo.version));
  const present = XDS_TYPES.filter((t) => server.cache.getSnapshot("*")!.resources(t).size > 0);
  const counts = present.map((t) => `${server.cache.getSnapshot("*")!.resources(t).size} ${shortType(t)}`).join(", ");
  const bytes = first.resources.reduce((n, r) => n + r.encoded.length, 0);
  const byName = (t: string) => (t === TYPE_URLS.endpoint || t === TYPE_URLS.route ? [...server.cache.getSnapshot("*")!.resources(t).keys()] : []);

  const measure = async (mode: "sotw" | "delta") => {
    // The worker is TypeScript: register tsx's loader inside the worker thread, then load it.
    const file = new URL("./xds-client-worker.ts", import.meta.url).href;
    const worker = new Worker(`import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(file)}); });`, {
      eval: true,
      workerData: { port, mode, types: present, names: Object.fromEntries(present.map((t) => [t, byName(t)])) },
    });
    type Msg = { ready?: boolean; error?: string; typeUrl?: string; at?: number; bytes?: number };
    const queue: Msg[] = [];
    let wake: (() => void) | undefined;
    worker.on("message", (m: Msg) => {
      queue.push(m);
      wake?.();
    });
    const next = async (): Promise<Msg> => {
      const deadline = Date.now() + 60_000;
      while (!queue.length) {
        if (Date.now() > deadline) throw new Error(`${mode} client: no response within 60 s`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 1000);
        });
      }
      const m = queue.shift()!;
      if (m.error) throw new Error(`${mode} client: ${m.error}`);
      return m;
    };
    if (!(await next()).ready) throw new Error(`${mode} client: unexpected message before ready`);
    const firstMs: number[] = [];
    const allMs: number[] = [];
    const sizes: number[] = [];
    const serverMs: number[] = [];
    for (let i = 0; i < changes; i++) {
      objects = changeOne(objects, vdirIndexes[(i * 37 + (mode === "delta" ? 11 : 0)) % vdirIndexes.length]!, 8000 + (i % 1000));
      const { resources, topo } = publish(objects);
      const prev = server.cache.getSnapshot("*")!;
      // XDS_BENCH_GC=1: collect the translator's garbage first, so its GC is not charged to the server.
      if (process.env.XDS_BENCH_GC === "1") gc();
      const start = performance.timeOrigin + performance.now();
      const snap = new Snapshot(resources, topo.version);
      server.cache.setSnapshot("*", snap); // synchronously diffs, encodes and writes the first response
      serverMs.push(performance.timeOrigin + performance.now() - start);
      const pending = new Set(present.filter((t) => snap.version(t) !== prev.version(t)));
      let seen = false;
      while (pending.size) {
        const m = await next();
        if (!seen) {
          firstMs.push(m.at! - start);
          sizes.push(m.bytes!);
        }
        seen = true;
        pending.delete(m.typeUrl!);
        if (!pending.size) allMs.push(m.at! - start);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    worker.postMessage({ stop: true });
    await worker.terminate();
    return { firstMs, allMs, sizes, serverMs };
  };

  const sotw = await measure("sotw");
  const delta = await measure("delta");
  // Collect garbage before reading RSS (the translator's intermediate objects are not retained).
  gc();
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;
  server.forceClose();

  const note = `${changes} changes${process.env.XDS_BENCH_GC === "1" ? " (GC before each)" : ""}; ${label}; ${counts}; ${(bytes / 1e6).toFixed(1)} MB encoded; load avg ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`;
  const row = (metric: string, xs: number[], sizes: number[] | undefined, withTarget: boolean): BenchRow => ({
    suite: "xds-server",
    metric,
    value: median(xs),
    unit: "ms",
    ...(withTarget ? { target: "p99 < 100 ms", pass: percentile(xs, 99) < 100 } : {}),
    note: `p99 ${percentile(xs, 99).toFixed(1)} ms;${sizes ? ` response ${(median(sizes) / 1e6).toFixed(2)} MB;` : ""} ${note}`,
  });
  rows.push(row("one-object change → SotW DiscoveryResponse at client", sotw.firstMs, sotw.sizes, true));
  rows.push(row("one-object change → Delta DiscoveryResponse at client", delta.firstMs, delta.sizes, true));
  rows.push(row("one-object change → every changed type at client (SotW, ACK-paced)", sotw.allMs, undefined, false));
  rows.push(row("one-object change → every changed type at client (Delta, ACK-paced)", delta.allMs, undefined, false));
  rows.push(row("server work per change: Snapshot + diff + encode + write (SotW)", sotw.serverMs, undefined, false));
  rows.push(row("server work per change: Snapshot + diff + encode + write (Delta)", delta.serverMs, undefined, false));
  rows.push({ suite: "xds-server", metric: "topology build (12,100 objects)", value: median(buildMs), unit: "ms", note: `runs ${buildMs.length}` });
  rows.push({ suite: "xds-server", metric: `resources build (${label})`, value: median(translateMs), unit: "ms", note: `runs ${translateMs.length}` });
  rows.push({ suite: "xds-server", metric: "resident memory after the run", value: Math.round(rssMb), unit: "MB", target: "< 512 MB", pass: rssMb < 512, note: `heap used ${Math.round(heapMb)} MB; the process also holds the generator's objects and the translator` });
  return rows;
}
