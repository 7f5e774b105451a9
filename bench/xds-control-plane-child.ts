// The control plane under test, in its own process (as the operator runs): the real ControlPlane
// (operator/controlplane.ts: buildTopology → translate → GatewayState → Snapshot → SnapshotCache)
// and the real AdsServer, fed by a provider that behaves like the Kubernetes provider: a change
// is delivered as a full ProviderSnapshot in which unchanged objects are the same validated
// objects as before (its validation cache keeps them) and the changed one is new.
// IPC from the bench: {change: {index, port}} → one VirtualDirectory's internalUrl port changes;
// {memory: true} → this process's memory; {stop: true}.
import { pino } from "pino";
import type { ApiObject } from "../crds/index.js";
import { ControlPlane, type ControlPlaneView } from "../operator/controlplane.js";
import type { Provider, ProviderSnapshot } from "../operator/provider/types.js";
import { TYPE_URLS } from "../operator/xds/server/resources.js";
import { AdsServer } from "../operator/xds/server/server.js";
import { translate } from "../operator/xds/translate/index.js";
import { changeOne, generateOrganisation } from "./xds-org-generator.js";

export type ChildMessage =
  | { ready: true; port: number; firstMs: number; types: string[]; names: Record<string, string[]>; counts: Record<string, number>; bytes: number }
  | { published: number; changedTypes: string[]; serverMs: number; rss: number }
  | { memory: NodeJS.MemoryUsage }
  | { error: string };

const send = (m: ChildMessage) => process.send!(m);

class BenchProvider implements Provider {
  private deliver: ((s: ProviderSnapshot) => void) | undefined;
  constructor(private objects: ApiObject[]) {}
  async start(onSnapshot: (s: ProviderSnapshot) => void): Promise<void> {
    this.deliver = onSnapshot;
    onSnapshot({ objects: this.objects, errors: [] });
  }
  async stop(): Promise<void> {
    this.deliver = undefined;
  }
  change(index: number, port: number): void {
    this.objects = changeOne(this.objects, index, port);
    this.deliver?.({ objects: this.objects, errors: [] });
  }
}

const XDS_TYPES: string[] = [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route];

async function main(): Promise<void> {
  const log = pino({ level: "silent" });
  const { objects } = generateOrganisation(100, 10, 10);
  const ads = new AdsServer({ logger: log });
  const port = await ads.listen(0);
  const provider = new BenchProvider(objects);
  // The operator's defaults (cli/commands/operator.ts): sidecar and mail proxy on loopback.
  const cp = new ControlPlane({
    provider,
    cache: ads.cache,
    translate: { fn: translate, options: { sidecar: { address: "127.0.0.1", port: 9001 }, mailProxy: { address: "127.0.0.1", pop3Port: 1110, imap4Port: 1143 } } },
    logger: log,
  });
  let last: ControlPlaneView | undefined;
  let published = 0;
  let changeStart = 0;
  cp.onUpdate((v) => {
    const prev = last;
    last = v;
    if (!prev) return;
    const changedTypes = XDS_TYPES.filter((t) => v.snapshot.version(t) !== prev.snapshot.version(t));
    send({ published: ++published, changedTypes, serverMs: performance.now() - changeStart, rss: process.memoryUsage().rss });
  });
  const t0 = performance.now();
  await cp.start();
  const firstMs = performance.now() - t0;
  const snap = cp.current()!.snapshot;
  const types = XDS_TYPES.filter((t) => snap.resources(t).size > 0);
  let bytes = 0;
  for (const t of types) for (const r of snap.resources(t).values()) bytes += r.encoded.length;
  send({
    ready: true,
    port,
    firstMs,
    types,
    // Envoy subscribes to EDS and RDS by name (the clusters' and listeners' references).
    names: Object.fromEntries(types.map((t) => [t, t === TYPE_URLS.endpoint || t === TYPE_URLS.route ? [...snap.resources(t).keys()] : []])),
    counts: Object.fromEntries(types.map((t) => [t, snap.resources(t).size])),
    bytes,
  });
  process.on("message", (m: { change?: { index: number; port: number }; memory?: boolean; stop?: boolean }) => {
    try {
      if (m.change) {
        changeStart = performance.now();
        provider.change(m.change.index, m.change.port);
      } else if (m.memory) {
        send({ memory: process.memoryUsage() });
      } else if (m.stop) {
        void cp.stop().then(() => {
          ads.forceClose();
          process.exit(0);
        });
      }
    } catch (err) {
      send({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
}

main().catch((err: unknown) => {
  send({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
