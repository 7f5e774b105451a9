// The control plane glue with real pieces: the file provider watching a copy of examples/contoso,
// the snapshot cache and ADS server, and a sidecar StateSource over xDS. A manifest edit and a
// health change each reach the connected client as a new version.
import { afterEach, describe, expect, it } from "vitest";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { ControlPlane, type DownListSource } from "../../operator/controlplane.js";
import { FileProvider } from "../../operator/provider/file-provider.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";

const silent = pino({ level: "silent" });
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

class SettableDown implements DownListSource {
  private list: readonly string[] = [];
  private readonly ls = new Set<(d: readonly string[]) => void>();
  down() {
    return this.list;
  }
  set(d: readonly string[]) {
    this.list = d;
    for (const l of this.ls) l(d);
  }
  subscribe(l: (d: readonly string[]) => void) {
    this.ls.add(l);
    return () => this.ls.delete(l);
  }
}

describe("control plane: provider → topology → snapshot cache → ADS", () => {
  it("pushes a new version to a connected client when a manifest changes or a server goes down", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cas-cp-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await cp("examples/contoso", dir, { recursive: true });
    const server = new AdsServer({ logger: silent });
    const port = await server.listen(0);
    cleanup.push(() => server.forceClose());
    const health = new SettableDown();
    const cp_ = new ControlPlane({
      provider: new FileProvider({ manifestDir: dir, debounceMs: 50, rescanMs: 0, logger: silent }),
      cache: server.cache,
      health,
      logger: silent,
    });
    await cp_.start();
    cleanup.push(() => cp_.stop());
    const first = cp_.current()!;
    expect(first.topology.sites.has("usa")).toBe(true);
    expect(cp_.state.current()!.topology.version).toBe(first.topology.version);

    const src = new XdsStateSource({ address: `127.0.0.1:${port}`, node: { id: "sidecar", cluster: "sidecars" }, logger: silent }).start();
    cleanup.push(() => src.stop());
    expect((await src.ready()).topology.version).toBe(first.topology.version);

    const file = join(dir, "sites.yaml");
    await writeFile(file, (await readFile(file, "utf8")).replace("  name: europe\nspec:\n", "  name: europe\nspec:\n  description: Europe (edited)\n"));
    await expect.poll(() => src.current()!.topology.version, { timeout: 15_000 }).not.toBe(first.topology.version);
    expect(src.current()!.topology.sites.get("europe")!.description).toBe("Europe (edited)");
    await expect.poll(() => server.fleet.ackedTopologyVersion()).toBe(src.current()!.topology.version);

    health.set(["usa-cas01"]);
    await expect.poll(() => src.current()!.health.isServerHealthy("usa-cas01"), { timeout: 10_000 }).toBe(false);
    expect(cp_.state.current()!.health.isServerHealthy("usa-cas01")).toBe(false);
  });
});
