// The change path reuses work (buildTopology's per-object memo, the translator's per-server and
// per-pool caches, Snapshot derived from its predecessor, GatewayState from per-object JSON). Its
// output must be exactly what a build from scratch gives: checked here over random sequences of
// one-object changes on the contoso golden organisation.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ApiObject } from "../../crds/index.js";
import { parseManifestText } from "../provider/manifests.js";
import { buildTopology, canonicalJson } from "../../model/topology/build.js";
import { GatewayStateMessage, gatewayStateResource } from "../../model/gateway-state.js";
import { Snapshot } from "./server/snapshot.js";
import { isMarkedSortedByName, markSortedByName, type XdsResource } from "./server/resources.js";
import { translate, translateFromScratch, type EnvoyResources } from "./translate/index.js";
import { GOLDEN_BASE_OPTIONS, IN } from "./translate/testing.js";

const file = path.join(IN, "contoso.yaml");
const BASE: readonly ApiObject[] = parseManifestText(readFileSync(file, "utf8"), file).objects.map((o) => o.object);

type Change =
  | { op: "port"; i: number; port: number }
  | { op: "maintenance"; i: number }
  | { op: "address"; i: number; ip: number }
  | { op: "auth"; i: number }
  | { op: "hostname"; i: number; n: number }
  | { op: "remove"; i: number }
  | { op: "restore" };

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ op: fc.constant("port" as const), i: fc.nat(), port: fc.integer({ min: 1024, max: 65535 }) }),
  fc.record({ op: fc.constant("maintenance" as const), i: fc.nat() }),
  fc.record({ op: fc.constant("address" as const), i: fc.nat(), ip: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ op: fc.constant("auth" as const), i: fc.nat() }),
  fc.record({ op: fc.constant("hostname" as const), i: fc.nat(), n: fc.integer({ min: 0, max: 9 }) }),
  fc.record({ op: fc.constant("remove" as const), i: fc.nat() }),
  fc.constant({ op: "restore" as const }),
);

/** Apply one change the way a provider delivers it: a new object for the changed one, the others kept. */
function apply(objects: ApiObject[], removed: ApiObject[], c: Change): ApiObject[] {
  const out = [...objects];
  const pick = <K extends ApiObject["kind"]>(kind: K, i: number) => {
    const idx = out.map((o, j) => (o.kind === kind ? j : -1)).filter((j) => j >= 0);
    return idx.length ? idx[i % idx.length]! : -1;
  };
  switch (c.op) {
    case "port": {
      const j = pick("VirtualDirectory", c.i);
      const o = out[j];
      if (o?.kind === "VirtualDirectory" && o.spec.internalUrl) {
        const u = new URL(o.spec.internalUrl);
        u.port = String(c.port);
        out[j] = { ...o, spec: { ...o.spec, internalUrl: u.toString() } };
      }
      break;
    }
    case "auth": {
      const j = pick("VirtualDirectory", c.i);
      const o = out[j];
      if (o?.kind === "VirtualDirectory") {
        const m = o.spec.internalAuthenticationMethods;
        out[j] = { ...o, spec: { ...o.spec, internalAuthenticationMethods: m.includes("Ntlm") ? m.filter((x) => x !== "Ntlm") : [...m, "Ntlm"] } };
      }
      break;
    }
    case "maintenance": {
      const j = pick("ClientAccessServer", c.i);
      const o = out[j];
      if (o?.kind === "ClientAccessServer") out[j] = { ...o, spec: { ...o.spec, maintenance: !o.spec.maintenance } };
      break;
    }
    case "address": {
      const j = pick("ClientAccessServer", c.i);
      const o = out[j];
      if (o?.kind === "ClientAccessServer") {
        const { address: _drop, ...rest } = o.spec;
        out[j] = { ...o, spec: c.ip === 0 ? rest : { ...rest, address: `10.0.0.${c.ip}` } };
      }
      break;
    }
    case "hostname": {
      const j = pick("ADSite", c.i);
      const o = out[j];
      if (o?.kind === "ADSite") out[j] = { ...o, spec: { ...o.spec, hostnames: [...o.spec.hostnames, `extra${c.n}.contoso.com`] } };
      break;
    }
    case "remove": {
      if (out.length === 0) break;
      const j = c.i % out.length;
      removed.push(out[j]!);
      out.splice(j, 1);
      break;
    }
    case "restore": {
      const o = removed.pop();
      if (o) out.push(o);
      break;
    }
  }
  return out;
}

const served = (r: EnvoyResources): XdsResource[] => [...r.clusters, ...r.endpoints, ...r.listeners, ...r.routes, ...r.secrets];
const wire = (r: EnvoyResources) => ({
  version: r.version,
  topologyVersion: r.topologyVersion,
  problems: r.problems,
  resources: served(r).map((x) => ({ name: x.name, typeUrl: x.typeUrl, version: x.version, bytes: Buffer.from(x.encoded).toString("base64") })),
});

describe("incremental change path == build from scratch", () => {
  it("topology, translation, snapshot and GatewayState match a fresh build after every change", () => {
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 6 }), fc.constantFrom([], ["usa-cas01"]), (changes, down) => {
        let objects = [...BASE];
        const removed: ApiObject[] = [];
        let prevSnap: Snapshot | undefined;
        for (const c of [undefined, ...changes]) {
          if (c) objects = apply(objects, removed, c);
          // Incremental: the same objects as before except the changed one; caches warm.
          const topo = buildTopology(objects);
          const tr = translate(topo, GOLDEN_BASE_OPTIONS);
          const gs = gatewayStateResource(objects, topo.version, down);
          // As the control plane gives them: the translator's marked sorted lists, then the state.
          const snap = new Snapshot({ lists: [tr.clusters, tr.endpoints, tr.listeners, tr.routes, tr.secrets, [gs]] }, topo.version, prevSnap);
          prevSnap = snap;
          // From scratch: deep copies (no identity shared) and no translator cache.
          const copies = structuredClone(objects);
          const freshTopo = buildTopology(copies);
          expect(topo.version).toBe(freshTopo.version);
          expect(topo.problems).toEqual(freshTopo.problems);
          expect([...topo.servers.values()]).toEqual([...freshTopo.servers.values()]);
          expect([...topo.sites.values()]).toEqual([...freshTopo.sites.values()]);
          const freshTr = translateFromScratch(freshTopo, GOLDEN_BASE_OPTIONS);
          expect(wire(tr)).toEqual(wire(freshTr));
          const freshGs = gatewayStateResource(copies, freshTopo.version, down);
          expect(Buffer.from(gs.encoded).equals(Buffer.from(freshGs.encoded))).toBe(true);
          // The assembled bytes are the canonical JSON of the message.
          const msg: GatewayStateMessage = { apiVersion: "casgateway.io/v1alpha1", topologyVersion: topo.version, down: [...down].sort(), objects: copies };
          expect(Buffer.from(gs.encoded).toString("utf8")).toBe(canonicalJson(msg));
          const freshSnap = new Snapshot([...served(freshTr), freshGs], freshTopo.version);
          for (const t of new Set([...snap.typeUrls(), ...freshSnap.typeUrls()])) {
            expect(snap.version(t)).toBe(freshSnap.version(t));
            const a = snap.resources(t);
            const b = freshSnap.resources(t);
            expect(a.size).toBe(b.size);
            expect([...a.keys()]).toEqual([...b.keys()]);
            for (const [n, r] of b) expect(a.get(n)?.version).toBe(r.version);
          }
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe("Snapshot from lists", () => {
  const r = (name: string, typeUrl = "t/a"): XdsResource => ({ name, typeUrl, encoded: Buffer.from(name), version: "" });
  it("takes a marked list as its type's group, and copies it when another part adds to the type", () => {
    const tr = translate(buildTopology(BASE), GOLDEN_BASE_OPTIONS);
    expect(isMarkedSortedByName(tr.clusters)).toBe(true);
    const marked = markSortedByName([r("b"), r("d")].map((x) => ({ ...x, version: x.name })));
    const before = [...marked];
    const snap = new Snapshot({ lists: [marked, [r("c"), r("a")], [r("z", "t/b")]] }, "v");
    expect([...snap.resources("t/a").keys()]).toEqual(["a", "b", "c", "d"]);
    expect(marked).toEqual(before);
    const flat = new Snapshot([...marked, r("c"), r("a"), r("z", "t/b")], "v");
    expect(snap.version("t/a")).toBe(flat.version("t/a"));
    expect(() => new Snapshot({ lists: [marked, [r("b")]] }, "v")).toThrow(/duplicate t\/a resource "b"/);
  });
});
