// The Kubernetes side of the operator (provider → topology → status writer, leader election) against
// the kube-apiserver STAND-IN: status patches, events, leases and conflicts go over real HTTP.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { Condition } from "../../crds/index.js";
import { KubernetesOperator, type KubernetesOperatorOptions } from "../../operator/kubernetes/runtime.js";
import type { FleetProgress } from "../../operator/xds/fleet.js";
import { KubeApiserverStandin, type KubeObject } from "../kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";

const log = pino({ level: "silent" });
const V = "casgateway.io/v1alpha1";

/** A FleetProgress the test drives by hand (stands for the ADS server's ACK tracking). */
class FakeFleet implements FleetProgress {
  private acked: string | undefined;
  private readonly listeners = new Set<(v: string) => void>();
  ackedTopologyVersion() {
    return this.acked;
  }
  onAcked(l: (v: string) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  ack(v: string) {
    this.acked = v;
    for (const l of this.listeners) l(v);
  }
}

const conditions = (o: KubeObject | undefined): Condition[] => ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []);
const cond = (o: KubeObject | undefined, type: string) => conditions(o).find((c) => c.type === type);

describe("KubernetesOperator (against the kube-apiserver stand-in)", () => {
  let api: KubeApiserverStandin;
  const running: KubernetesOperator[] = [];

  beforeEach(async () => {
    api = new KubeApiserverStandin();
    await api.start();
  });
  afterEach(async () => {
    for (const op of running.splice(0)) await op.stop();
    await api.stop();
  });

  const start = async (identity: string, extra: Partial<KubernetesOperatorOptions> = {}) => {
    const op = new KubernetesOperator({
      kc: standinKubeConfig(api.url, `token-${identity}`),
      log,
      identity,
      lease: { namespace: "mail", name: "cas-gateway-operator", durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200 },
      debounceMs: 20,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      ...extra,
    });
    running.push(op);
    await op.start();
    return op;
  };
  const statusPatches = (auth?: string) =>
    api.requests.filter((r) => r.method === "PATCH" && r.path.endsWith("/status") && r.status === 200 && (auth === undefined || r.auth === auth));

  it("writes Accepted/ResolvedRefs/Programmed through /status with merge patch, never touching spec", async () => {
    const objs = contosoObjects("mail");
    for (const o of objs) api.apply(o);
    const fleet = new FakeFleet();
    const op = await start("op-a", { fleet });
    await waitFor("leader", () => op.isLeader);
    await waitFor("every object has status", () => api.list(V, "ADSite").concat(api.list(V, "MailboxDatabase")).every((o) => cond(o, "Accepted")));
    const site = api.get(V, "ADSite", "mail", "usa")!;
    expect(cond(site, "Accepted")).toMatchObject({ status: "True", reason: "Accepted", observedGeneration: 1 });
    expect(cond(site, "ResolvedRefs")).toMatchObject({ status: "True" });
    expect(cond(site, "Programmed")).toMatchObject({ status: "False", reason: "Pending" });
    expect((site.status as { observedGeneration?: number }).observedGeneration).toBe(1);
    const patches = statusPatches();
    expect(patches.length).toBeGreaterThan(0);
    for (const p of patches) {
      expect(p.contentType).toBe("application/merge-patch+json");
      expect(Object.keys(p.body as object).sort()).toEqual(["metadata", "status"]);
      expect(Object.keys((p.body as { metadata: object }).metadata)).toEqual(["resourceVersion"]);
    }
    // Spec is exactly what was applied (no drift for GitOps tools).
    const applied = objs.find((o) => o.kind === "ADSite" && o.metadata.name === "usa")!;
    expect(site.spec).toEqual(applied.spec);

    // The fleet ACKs the current topology: Programmed turns True, lastTransitionTime of Accepted kept.
    const acceptedAt = cond(site, "Accepted")!.lastTransitionTime;
    fleet.ack(op.current()!.topology.version);
    await waitFor("Programmed", () => cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")?.status === "True");
    const after = api.get(V, "ADSite", "mail", "usa")!;
    expect(cond(after, "Programmed")!.message).toContain(op.current()!.topology.version);
    expect(cond(after, "Accepted")!.lastTransitionTime).toBe(acceptedAt);

    // A spec change: the new generation is Pending until the fleet ACKs the topology that has it.
    const db = api.get(V, "MailboxDatabase", "mail", "db-usa-2010")!;
    api.apply({ ...db, spec: { ...(db.spec as object), databaseName: "DB-USA-2010-RENAMED" } });
    await waitFor("pending for generation 2", () => {
      const c = cond(api.get(V, "MailboxDatabase", "mail", "db-usa-2010"), "Programmed");
      return c?.observedGeneration === 2 && c.status === "False" ? c : undefined;
    });
    expect(cond(api.get(V, "ADSite", "mail", "usa"), "Programmed")?.status).toBe("True"); // untouched objects stay Programmed
    fleet.ack(op.current()!.topology.version);
    await waitFor("programmed generation 2", () => cond(api.get(V, "MailboxDatabase", "mail", "db-usa-2010"), "Programmed")?.status === "True");
  });

  it("rejects an invalid object with Accepted=False naming the field, and records a Warning event", async () => {
    api.apply({
      apiVersion: V,
      kind: "ClientAccessServer",
      metadata: { name: "bad-cas", namespace: "mail" },
      spec: { site: "usa", fqdn: "not a host name", exchangeVersion: "2010", roles: ["ClientAccess"] },
    });
    const op = await start("op-a");
    await waitFor("leader", () => op.isLeader);
    const c = await waitFor("Accepted=False", () => cond(api.get(V, "ClientAccessServer", "mail", "bad-cas"), "Accepted"));
    expect(c).toMatchObject({ status: "False", reason: "Invalid" });
    expect(c.message).toMatch(/^spec\.fqdn: /);
    expect(cond(api.get(V, "ClientAccessServer", "mail", "bad-cas"), "Programmed")).toMatchObject({ status: "False", reason: "Invalid" });
    const ev = await waitFor("event", () => api.list("v1", "Event").find((e) => (e.involvedObject as { name?: string }).name === "bad-cas"));
    expect(ev).toMatchObject({ type: "Warning", reason: "Invalid", involvedObject: { kind: "ClientAccessServer", apiVersion: V, namespace: "mail" } });
    expect(String(ev.message)).toContain("spec.fqdn");
    // Without an ADS server in this process, Programmed says so rather than pretending.
    expect(cond(api.get(V, "ClientAccessServer", "mail", "bad-cas"), "ResolvedRefs")?.status).toBe("Unknown");
  });

  it("refuses a misspelt field with Accepted=False and the nearest field name (strict, as kubectl)", async () => {
    const [cas] = contosoObjects("mail").filter((o) => o.kind === "ClientAccessServer");
    api.apply({ ...cas, spec: { ...(cas.spec as object), maintenence: true } });
    const op = await start("op-a");
    await waitFor("leader", () => op.isLeader);
    const name = (cas.metadata as { name: string }).name;
    const c = await waitFor("Accepted=False", () => cond(api.get(V, "ClientAccessServer", "mail", name), "Accepted"));
    expect(c).toMatchObject({ status: "False", reason: "Invalid" });
    expect(c.message).toBe('spec.maintenence: unknown field "maintenence"; did you mean maintenance?');
  });

  it("reports a dangling reference with ResolvedRefs=False", async () => {
    for (const o of contosoObjects("mail").filter((o) => o.kind === "ADSite")) api.apply(o);
    api.apply({
      apiVersion: V,
      kind: "VirtualDirectory",
      metadata: { name: "owa-nowhere", namespace: "mail" },
      spec: { server: "no-such-server", service: "Owa", internalUrl: "https://nowhere.contoso.com/owa" },
    });
    const op = await start("op-a");
    await waitFor("leader", () => op.isLeader);
    const c = await waitFor("ResolvedRefs", () => cond(api.get(V, "VirtualDirectory", "mail", "owa-nowhere"), "ResolvedRefs"));
    expect(c).toMatchObject({ status: "False", reason: "UnknownServer" });
    expect(c.message).toContain("spec.server");
    expect(cond(api.get(V, "VirtualDirectory", "mail", "owa-nowhere"), "Accepted")?.status).toBe("True");
    await waitFor("event", () => api.list("v1", "Event").find((e) => e.reason === "UnknownServer"));
    // Creating the server resolves it.
    api.apply({
      apiVersion: V,
      kind: "ClientAccessServer",
      metadata: { name: "no-such-server", namespace: "mail" },
      spec: { site: "usa", fqdn: "nowhere.contoso.com", exchangeVersion: "2013", roles: ["ClientAccess", "Mailbox"] },
    });
    await waitFor("resolved", () => cond(api.get(V, "VirtualDirectory", "mail", "owa-nowhere"), "ResolvedRefs")?.status === "True");
  });

  it("R-HYB-1: OrganizationRelationship gets status like every kind: Accepted, a DuplicateDomain warning, Accepted=False naming a bad URL", async () => {
    for (const o of contosoObjects("mail")) api.apply(o);
    const rel = (name: string, spec: Record<string, unknown>) =>
      api.apply({
        apiVersion: V,
        kind: "OrganizationRelationship",
        metadata: { name, namespace: "mail" },
        spec: { domainNames: ["contoso.mail.onmicrosoft.com"], targetOwaUrl: "https://outlook.office.com/mail", targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync", ...spec },
      });
    rel("office365", {});
    rel("office365-copy", { domainNames: ["Contoso.mail.onmicrosoft.com", "fabrikam.mail.onmicrosoft.com"] });
    rel("bad-url", { domainNames: ["other.mail.onmicrosoft.com"], targetOwaUrl: "outlook dot com" });
    const op = await start("op-a");
    await waitFor("leader", () => op.isLeader);
    const get = (n: string) => api.get(V, "OrganizationRelationship", "mail", n);
    await waitFor("status on every relationship", () => ["office365", "office365-copy", "bad-url"].every((n) => cond(get(n), "Accepted")));
    expect(cond(get("office365"), "Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
    expect(cond(get("office365"), "DomainsResolved")).toBeUndefined();
    expect(cond(get("office365-copy"), "Accepted")?.status).toBe("True");
    const dup = cond(get("office365-copy"), "DomainsResolved");
    expect(dup).toMatchObject({ status: "True", reason: "DuplicateDomain" });
    expect(dup?.message).toContain('spec.domainNames.0: R-HYB-1: domain Contoso.mail.onmicrosoft.com already belongs to OrganizationRelationship "office365"');
    const bad = cond(get("bad-url"), "Accepted");
    expect(bad).toMatchObject({ status: "False", reason: "Invalid" });
    expect(bad?.message).toMatch(/^spec\.targetOwaUrl: /);
    // The accepted relationships are in the topology the operator serves; the invalid one is not.
    expect([...op.current()!.topology.organizationRelationships.keys()]).toEqual(["office365", "office365-copy"]);
  });

  it("writes only when the status changes (no hot loop) and retries after 409 Conflict", async () => {
    api.faults.conflictNextStatusPatches = 2;
    for (const o of contosoObjects("mail")) api.apply(o);
    // A clock a second further on at every reading: recomputing a status from the same record must
    // not count as a change because a new condition's transition time moved (a loaded machine does
    // cross second boundaries mid-way, and that re-sent stale patches: extra 409s).
    let tick = Date.parse("2026-01-01T00:00:00Z");
    const op = await start("op-a", { now: () => new Date((tick += 1000)) });
    await waitFor("leader", () => op.isLeader);
    const total = contosoObjects("mail").length;
    await waitFor("all statuses", () => statusPatches().length >= total);
    expect(api.requests.filter((r) => r.method === "PATCH" && r.status === 409)).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300));
    const settled = statusPatches().length;
    expect(settled).toBe(total); // one write per object, even after the conflicts
    // Unrelated churn (bookmarks, re-opened watches, a Secret) produces snapshots but no writes.
    api.bumpResourceVersion(10);
    api.bookmark();
    api.closeWatches();
    api.apply({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "unrelated", namespace: "mail" }, data: {} });
    await new Promise((r) => setTimeout(r, 500));
    expect(statusPatches().length).toBe(settled);
  });

  it("leader election: only the leader writes status; the other takes over when it stops", async () => {
    const sites = contosoObjects("mail").filter((o) => o.kind === "ADSite");
    for (const o of sites) api.apply(o);
    const a = await start("op-a");
    await waitFor("a leads", () => a.isLeader);
    const b = await start("op-b");
    await waitFor("a wrote", () => statusPatches("Bearer token-op-a").length >= sites.length);
    // b serves (has the topology) but does not write.
    expect(b.current()?.topology.sites.size).toBe(3);
    await new Promise((r) => setTimeout(r, 600)); // several retry periods
    expect(b.isLeader).toBe(false);
    expect(statusPatches("Bearer token-op-b")).toHaveLength(0);
    const lease = api.get("coordination.k8s.io/v1", "Lease", "mail", "cas-gateway-operator")!;
    expect((lease.spec as { holderIdentity?: string }).holderIdentity).toBe("op-a");
    expect((lease.spec as { renewTime?: string }).renewTime).toMatch(/\.\d{6}Z$/);

    // a stops gracefully: it releases the lease and b takes over without waiting for expiry.
    await a.stop();
    running.splice(running.indexOf(a), 1);
    expect((api.get("coordination.k8s.io/v1", "Lease", "mail", "cas-gateway-operator")!.spec as { holderIdentity?: string | null }).holderIdentity).toBeFalsy();
    await waitFor("b leads", () => b.isLeader, 5000);
    // b now writes: change a site and see b's patch.
    api.apply({ ...sites[0], spec: { ...(sites[0].spec as object), description: "changed" } });
    await waitFor("b wrote", () => statusPatches("Bearer token-op-b").length > 0);
    expect(cond(api.get(V, "ADSite", "mail", sites[0].metadata.name), "Accepted")?.observedGeneration).toBe(2);
    const held = api.get("coordination.k8s.io/v1", "Lease", "mail", "cas-gateway-operator")!.spec as { holderIdentity?: string; leaseTransitions?: number };
    expect(held.holderIdentity).toBe("op-b");
    expect(held.leaseTransitions).toBe(1);
  });

  it("a standby takes over when the leader vanishes without releasing (lease expiry)", async () => {
    for (const o of contosoObjects("mail").filter((o) => o.kind === "ADSite")) api.apply(o);
    const a = await start("op-a");
    await waitFor("a leads", () => a.isLeader);
    const b = await start("op-b");
    // Simulate a crash: a stops renewing and does not release.
    await a.elector.abandon();
    await waitFor("b leads after expiry", () => b.isLeader, 8000);
  });
});
