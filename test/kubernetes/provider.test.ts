// The Kubernetes provider against the kube-apiserver STAND-IN (test/kube-apiserver-standin): real
// HTTP list/watch through @kubernetes/client-node, not a mock of our own code.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { KubernetesProvider, type KubernetesSnapshot } from "../../operator/kubernetes/provider.js";
import { buildTopology } from "../../model/topology/build.js";
import { KINDS } from "../../crds/index.js";
import { KubeApiserverStandin } from "../kube-apiserver-standin/server.js";
import { contosoObjects, standinKubeConfig, waitFor } from "../kube-apiserver-standin/helpers.js";

const log = pino({ level: "silent" });

describe("KubernetesProvider (against the kube-apiserver stand-in)", () => {
  let api: KubeApiserverStandin;
  let provider: KubernetesProvider | undefined;
  let snaps: KubernetesSnapshot[];

  beforeEach(async () => {
    api = new KubeApiserverStandin();
    await api.start();
    snaps = [];
  });
  afterEach(async () => {
    await provider?.stop();
    provider = undefined;
    await api.stop();
  });

  const start = async (opts: { namespace?: string; mailboxConfigMap?: { namespace: string; name: string; key: string }; pageSize?: number } = {}) => {
    provider = new KubernetesProvider({
      kc: standinKubeConfig(api.url),
      log,
      debounceMs: 20,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      ...opts,
    });
    await provider.startK8s((s) => snaps.push(s));
    // Watches open right after the lists (5 kinds + TLS secrets).
    await waitFor("watches open", () => api.openWatches >= 5);
    return provider;
  };
  const last = () => snaps[snaps.length - 1];

  it("lists applied objects into a snapshot, then follows modifications and deletions", async () => {
    const objs = contosoObjects("mail");
    for (const o of objs) api.apply(o);
    await start();
    expect(last().objects).toHaveLength(objs.length);
    expect(last().rejections).toEqual([]);
    const topo = buildTopology(last().objects);
    expect(topo.problems.filter((p) => p.severity === "error")).toEqual([]);
    expect([...topo.sites.keys()]).toEqual(["asia", "europe", "usa"]);
    const watchedWithBookmarks = api.requests.filter((r) => r.query.watch === "true");
    expect(watchedWithBookmarks.length).toBeGreaterThanOrEqual(5);
    expect(watchedWithBookmarks.every((r) => r.query.allowWatchBookmarks === "true" && r.query.resourceVersion)).toBe(true);

    // Modify: a database fails over (R-2013-2).
    const db = api.get("casgateway.io/v1alpha1", "MailboxDatabase", "mail", "db-usa-2013")!;
    const spec = db.spec as { activeServer: string; servers: string[] };
    const other = spec.servers.find((s) => s !== spec.activeServer);
    const target = other ?? spec.activeServer;
    const before = snaps.length;
    api.apply({ ...db, spec: { ...spec, activeServer: target, servers: [...spec.servers] }, metadata: { ...db.metadata, labels: { touched: "yes" } } });
    const s2 = await waitFor("snapshot after modify", () => snaps.length > before && last());
    const db2 = s2.objects.find((o) => o.kind === "MailboxDatabase" && o.metadata.name === "db-usa-2013");
    expect(db2?.metadata.labels).toEqual({ touched: "yes" });

    // Delete.
    const n = last().objects.length;
    api.delete("casgateway.io/v1alpha1", "MailboxDatabase", "mail", "db-usa-2013");
    const s3 = await waitFor("snapshot after delete", () => last().objects.length === n - 1 && last());
    expect(s3.objects.some((o) => o.metadata.name === "db-usa-2013")).toBe(false);
  });

  it("leaves invalid objects out and reports the failing field", async () => {
    api.apply({
      apiVersion: "casgateway.io/v1alpha1",
      kind: "ClientAccessServer",
      metadata: { name: "bad-cas", namespace: "mail" },
      spec: { site: "usa", fqdn: "not a host name", exchangeVersion: "2010", roles: ["ClientAccess"] },
    });
    await start();
    expect(last().objects).toEqual([]);
    expect(last().rejections).toEqual([
      expect.objectContaining({ kind: "ClientAccessServer", name: "bad-cas", namespace: "mail", field: "spec.fqdn" }),
    ]);
    expect(last().errors[0]).toMatchObject({ file: "kubernetes:mail/clientaccessservers/bad-cas", field: "spec.fqdn" });
  });

  it("watches one namespace only when asked", async () => {
    const site = contosoObjects("mail").find((o) => o.kind === "ADSite")!;
    api.apply(site);
    api.apply({ ...site, metadata: { ...site.metadata, namespace: "other", name: "elsewhere" } });
    await start({ namespace: "mail" });
    expect(last().objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([`mail/${site.metadata.name}`]);
    expect(api.requests.some((r) => r.path.startsWith("/apis/casgateway.io/v1alpha1/namespaces/mail/"))).toBe(true);
    expect(api.requests.some((r) => r.path === "/apis/casgateway.io/v1alpha1/adsites")).toBe(false);
  });

  it("re-lists and recovers after 410 Gone (compacted resourceVersion)", async () => {
    const objs = contosoObjects("mail");
    for (const o of objs.slice(0, 3)) api.apply(o);
    const p = await start();
    const sites = p.informers.get("ADSite")!;
    const listsBefore = sites.stats.lists;
    api.compact(); // open watches get ERROR 410 and close; old resourceVersions are gone
    for (const o of objs.slice(3)) api.apply(o);
    await waitFor("all objects after 410", () => last().objects.length === objs.length);
    await waitFor("a re-list of adsites", () => sites.stats.lists > listsBefore);
    expect(sites.stats.gone).toBeGreaterThanOrEqual(1);
    // A watch opened from a compacted resourceVersion also gets 410 and re-lists.
    api.closeWatches();
    api.compact();
    api.apply({ ...objs[0], metadata: { ...objs[0].metadata, labels: { after: "second-compaction" } } });
    await waitFor("label after second compaction", () =>
      last().objects.find((o) => o.metadata.name === objs[0].metadata.name)?.metadata.labels?.after === "second-compaction",
    );
  });

  it("follows BOOKMARKs: a re-opened watch resumes from the bookmark's resourceVersion without a re-list", async () => {
    api.apply(contosoObjects("mail")[0]);
    const p = await start();
    const sites = p.informers.get("ADSite")!;
    api.bumpResourceVersion(500); // writes elsewhere in the cluster
    expect(api.bookmark()).toBe(KINDS.length + 1); // one watch per casgateway.io kind, and Secrets
    await waitFor("bookmark seen", () => sites.stats.bookmarks >= 1);
    expect(sites.resourceVersion).toBe(api.currentResourceVersion);
    const lists = sites.stats.lists;
    const watches = sites.stats.watches;
    api.closeWatches(); // as at the server's watch timeout
    const adsiteWatches = () => api.requests.filter((r) => r.query.watch === "true" && r.path.endsWith("/adsites"));
    const before = adsiteWatches().length;
    await waitFor("watch re-opened", () => sites.stats.watches > watches && adsiteWatches().length > before);
    const rewatch = adsiteWatches().at(-1)!;
    expect(rewatch.query.resourceVersion).toBe(api.currentResourceVersion);
    expect(sites.stats.lists).toBe(lists);
  });

  it("backs off and recovers when listing fails", async () => {
    api.faults.failNextLists = 3;
    api.apply(contosoObjects("mail")[0]);
    await start();
    expect(last().objects).toHaveLength(1);
    expect(api.requests.filter((r) => r.status === 500).length).toBe(3);
  });

  it("reads TLS Secrets referenced by ADSites and reports dangling references", async () => {
    const site = contosoObjects("mail").find((o) => o.kind === "ADSite")!;
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    api.apply({ ...site, metadata: { ...site.metadata, annotations: { "casgateway.io/tls-secret": "front-door" } } });
    await start();
    expect(last().refProblems).toEqual([expect.objectContaining({ kind: "ADSite", reason: "SecretNotFound", condition: "ResolvedRefs" })]);
    api.apply({
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: { name: "front-door", namespace: "mail" },
      data: { "tls.crt": Buffer.from(pem).toString("base64"), "tls.key": Buffer.from(key).toString("base64") },
    });
    await waitFor("certificate", () => last().tlsBySite.get(site.metadata.name));
    expect(last().refProblems).toEqual([]);
    expect(api.requests.find((r) => r.path === "/api/v1/secrets" && r.query.watch !== "true")?.query.fieldSelector).toBe("type=kubernetes.io/tls");
  });

  it("watches the mailbox ConfigMap named by flag and checks its CSV", async () => {
    const csv = readFileSync(join(import.meta.dirname, "..", "..", "examples", "contoso", "mailboxes.csv"), "utf8");
    api.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "mailboxes", namespace: "cas-system" }, data: { "mailboxes.csv": csv } });
    api.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "unrelated", namespace: "cas-system" }, data: {} });
    await start({ mailboxConfigMap: { namespace: "cas-system", name: "mailboxes", key: "mailboxes.csv" } });
    expect(last().mailboxCsv?.text).toBe(csv);
    expect(last().errors).toEqual([]);
    const cmWatch = await waitFor("configmap watch", () => api.requests.find((r) => r.path === "/api/v1/namespaces/cas-system/configmaps" && r.query.watch === "true"));
    expect(cmWatch?.query.fieldSelector).toBe("metadata.name=mailboxes");
    api.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "mailboxes", namespace: "cas-system" }, data: { "mailboxes.csv": "Name,Nothing\nx,y\n" } });
    const bad = await waitFor("csv error", () => last().errors.find((e) => e.file === "kubernetes:cas-system/configmaps/mailboxes"));
    expect(bad.field).toMatch(/^data\.mailboxes\.csv/);
    expect(last().mailboxCsv).toBeUndefined();
  });

  it("lists in pages (limit/continue) and keeps the first page's resourceVersion", async () => {
    const objs = contosoObjects("mail");
    for (const o of objs) api.apply(o);
    const p = await start({ pageSize: 7 });
    expect(last().objects).toHaveLength(objs.length);
    const vdirLists = api.requests.filter((r) => r.path.endsWith("/virtualdirectories") && r.query.watch !== "true");
    expect(vdirLists.length).toBeGreaterThan(5);
    expect(vdirLists.every((r) => r.query.limit === "7")).toBe(true);
    expect(p.informers.get("VirtualDirectory")!.resourceVersion).toBe(api.currentResourceVersion);
  });
});
