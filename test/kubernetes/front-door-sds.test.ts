// The front-door certificate over file-based SDS, and the CA bundle for the Exchange servers'
// certificates (issue 21, point 2). Envoy is not installable here, so what is tested is what can be
// without it: the listener's SDS config and the SDS file pass Envoy's proto validation and point at
// the mounted Secret; the chart wires them (real Helm); a Kubernetes-style Secret renewal (new
// timestamped directory, `..data` symlink renamed onto it) is a move inside the directory the SDS
// file tells Envoy to watch (Envoy's WatchedDirectory watches a directory for moves: inotify
// IN_MOVED_TO, which node's fs.watch reports as "rename"), and the files read through the same
// paths then hold the new certificate. The CA bundle reaches Envoy's validation_context and the
// operator's health checks.
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, watch, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildTopology } from "../../model/topology/build.js";
import type { ServerInfo } from "../../model/topology/types.js";
import { probe, probeTargets } from "../../operator/health/prober.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { envoyRoot } from "../../operator/xds/translate/protos.js";
import { translate } from "../../operator/xds/translate/index.js";
import { FRONT_DOOR_SDS_SECRET, frontDoorSdsFile } from "../../operator/xds/translate/sds-file.js";
import { makeTestCerts } from "../mail/certs.js";
import { container, find, render, type K8sObject } from "./helm.js";

type Obj = Record<string, any>;
const root = envoyRoot();
const decode = (typeUrl: string, bytes: Uint8Array): Obj => {
  const t = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  return t.toObject(t.decode(bytes), { enums: String, longs: Number, defaults: false }) as Obj;
};
const dir = mkdtempSync(join(tmpdir(), "cas-sds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = {
  sidecar: { address: "127.0.0.1", port: 9001 },
  mailProxy: { address: "127.0.0.1", pop3Port: 1110, imap4Port: 1143 },
};

describe("front-door certificate over file-based SDS", () => {
  it("the HTTPS listener takes its certificate from the SDS file, watching the file's directory", async () => {
    const org = await loadOrganisation("examples/contoso");
    const out = translate(org.topology, { ...BASE, tls: { sdsFile: "/etc/envoy/front-door-sds.yaml" } });
    const https = out.listeners.map((l) => decode(l.typeUrl, l.encoded)).find((l) => l.name === "https")!;
    const tls = decode(
      https.filter_chains[0].transport_socket.typed_config.type_url,
      https.filter_chains[0].transport_socket.typed_config.value,
    );
    expect(tls.common_tls_context.tls_certificates).toBeUndefined();
    expect(tls.common_tls_context.tls_certificate_sds_secret_configs).toEqual([
      {
        name: FRONT_DOOR_SDS_SECRET,
        sds_config: { path_config_source: { path: "/etc/envoy/front-door-sds.yaml", watched_directory: { path: "/etc/envoy" } }, resource_api_version: "V3" },
      },
    ]);
    // No SDS resources are served over ADS for it: Envoy reads the file.
    expect(out.secrets).toEqual([]);
  });

  it("the SDS file names the Secret's files and watches the Secret's directory; it passes Envoy's validation", () => {
    const f = frontDoorSdsFile("/etc/cas-gateway/tls/tls.crt", "/etc/cas-gateway/tls/tls.key");
    expect(f.value).toEqual({
      resources: [
        {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
          name: FRONT_DOOR_SDS_SECRET,
          tls_certificate: {
            certificate_chain: { filename: "/etc/cas-gateway/tls/tls.crt" },
            private_key: { filename: "/etc/cas-gateway/tls/tls.key" },
            watched_directory: { path: "/etc/cas-gateway/tls" },
          },
        },
      ],
    });
    expect(() => frontDoorSdsFile("/a/tls.crt", "/b/tls.key")).toThrow(/one directory/);
    expect(() => frontDoorSdsFile("tls.crt", "tls.key")).toThrow(/absolute/);
  });

  it("chart: with tls.secretName the operator points Envoy at the SDS file in the bootstrap ConfigMap; the Secret is mounted where the file says", () => {
    const objs = render({ set: { "mailboxDirectory.configMap": "mailboxes", "tls.secretName": "front-door" } });
    const args = container(find(objs, "Deployment", "-operator"), "operator").args as string[];
    expect(args).toContain("--tls-sds-file=/etc/envoy/front-door-sds.yaml");
    expect(args.some((a) => a.startsWith("--tls-cert"))).toBe(false);
    const cm = find(objs, "ConfigMap", "-bootstrap");
    const sds = parse(String(cm.data["front-door-sds.yaml"])) as Obj;
    expect(sds).toEqual(frontDoorSdsFile("/etc/cas-gateway/tls/tls.crt", "/etc/cas-gateway/tls/tls.key").value);
    const gw = find(objs, "Deployment", "-gateway");
    const envoy = container(gw, "envoy");
    expect(envoy.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: "bootstrap", mountPath: "/etc/envoy", readOnly: true },
        { name: "tls", mountPath: "/etc/cas-gateway/tls", readOnly: true },
      ]),
    );
    // A directory mount (not subPath): the kubelet only updates Secret and ConfigMap volumes that way.
    expect((envoy.volumeMounts as K8sObject[]).every((m) => m.subPath === undefined)).toBe(true);
    expect(gw.spec.template.spec.volumes).toContainEqual({ name: "tls", secret: { secretName: "front-door" } });
    expect(find(render({ set: { "mailboxDirectory.configMap": "mailboxes" } }), "ConfigMap", "-bootstrap").data["front-door-sds.yaml"]).toBeUndefined();
  });

  it("a Kubernetes-style Secret renewal is a move in the watched directory, and the same paths then read the new certificate", async () => {
    // The kubelet's layout: mount/tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/ (AtomicWriter).
    const mount = join(dir, "tls");
    mkdirSync(mount);
    const first = makeTestCerts(join(dir, "gen1"), "mail.contoso.com");
    const second = makeTestCerts(join(dir, "gen2"), "mail.contoso.com");
    const writeGeneration = (name: string, certs: { cert: string; key: string }) => {
      mkdirSync(join(mount, name));
      writeFileSync(join(mount, name, "tls.crt"), certs.cert);
      writeFileSync(join(mount, name, "tls.key"), certs.key);
    };
    writeGeneration("..2026_12_05_13_00_00.1", first);
    symlinkSync("..2026_12_05_13_00_00.1", join(mount, "..data"));
    symlinkSync("..data/tls.crt", join(mount, "tls.crt"));
    symlinkSync("..data/tls.key", join(mount, "tls.key"));
    const sds = frontDoorSdsFile(join(mount, "tls.crt"), join(mount, "tls.key"));
    const watched = ((sds.value.resources as Obj[])[0]!.tls_certificate as Obj).watched_directory.path as string;
    expect(watched).toBe(mount);
    const serial = () => new X509Certificate(readFileSync(join(mount, "tls.crt"))).serialNumber;
    const before = serial();

    const events: Array<{ type: string; file: string | null }> = [];
    const w = watch(watched, (type, file) => events.push({ type, file: file?.toString() ?? null }));
    try {
      // Renewal: new generation, a temporary symlink, renamed over ..data in one step.
      writeGeneration("..2026_12_05_14_00_00.2", second);
      symlinkSync("..2026_12_05_14_00_00.2", join(mount, "..data_tmp"));
      renameSync(join(mount, "..data_tmp"), join(mount, "..data"));
      const end = Date.now() + 5000;
      while (!events.some((e) => e.type === "rename" && e.file === "..data") && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    } finally {
      w.close();
    }
    expect(events).toContainEqual({ type: "rename", file: "..data" });
    // tls.crt itself was never written: watching the file for changes would miss the renewal.
    expect(events.some((e) => e.file === "tls.crt")).toBe(false);
    expect(serial()).not.toBe(before);
    expect(serial()).toBe(new X509Certificate(second.cert).serialNumber);
    expect(readFileSync(join(mount, "tls.key"), "utf8")).toBe(second.key);
  });
});

describe("CA bundle for the Exchange servers' certificates", () => {
  const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

  it("ClientAccessServer spec.tls.caBundle becomes that server's trusted_ca (inline); others use the gateway's file", async () => {
    const org = await loadOrganisation("examples/contoso");
    const objects = org.manifests.objects.map((o) => o.object);
    const first = objects.find((o) => o.kind === "ClientAccessServer" && !(o.spec as Obj).tls?.insecureSkipVerify)!;
    const edited = objects.map((o) => (o === first ? { ...o, spec: { ...(o.spec as Obj), tls: { ...(o.spec as Obj).tls, caBundle: CA_PEM } } } : o));
    const topology = buildTopology(edited as Parameters<typeof buildTopology>[0]);
    expect(topology.servers.get(first.metadata.name)!.caBundle).toBe(CA_PEM);
    const out = translate(topology, { ...BASE, upstreamCaFile: "/etc/cas-gateway/upstream-ca/ca.crt" });
    const trusted = out.clusters
      .map((c) => decode(c.typeUrl, c.encoded))
      .filter((c) => c.transport_socket?.typed_config)
      .map((c) => {
        const t = decode(c.transport_socket.typed_config.type_url, c.transport_socket.typed_config.value);
        return { sni: t.sni as string, ca: t.common_tls_context?.validation_context?.trusted_ca as Obj | undefined };
      })
      .filter((t) => t.ca);
    const fqdn = String((first.spec as Obj).fqdn).toLowerCase();
    const mine = trusted.filter((t) => t.sni === fqdn);
    expect(mine.length).toBeGreaterThan(0);
    for (const t of mine) expect(t.ca).toEqual({ inline_string: CA_PEM });
    const others = trusted.filter((t) => t.sni !== fqdn);
    expect(others.length).toBeGreaterThan(0);
    for (const t of others) expect(t.ca).toEqual({ filename: "/etc/cas-gateway/upstream-ca/ca.crt" });
  });

  it("the CRD field is checked: PEM only, bounded", async () => {
    const { ClientAccessServer } = await import("../../crds/index.js");
    const spec = { site: "usa", fqdn: "ex1.contoso.com", exchangeVersion: "2016", roles: ["ClientAccess", "Mailbox"] };
    const ok = ClientAccessServer.safeParse({ apiVersion: "casgateway.io/v1alpha1", kind: "ClientAccessServer", metadata: { name: "ex1" }, spec: { ...spec, tls: { caBundle: CA_PEM } } });
    expect(ok.success).toBe(true);
    const bad = ClientAccessServer.safeParse({ apiVersion: "casgateway.io/v1alpha1", kind: "ClientAccessServer", metadata: { name: "ex1" }, spec: { ...spec, tls: { caBundle: "not a certificate" } } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path.join(".")).toBe("spec.tls.caBundle");
  });

  it("the operator's health check validates an internal-CA server with the server's caBundle (and fails without it)", async () => {
    const certs = makeTestCerts(join(dir, "internal-ca"), "localhost");
    const server = createServer({ cert: certs.cert, key: certs.key }, (_req, res) => res.writeHead(200).end("ok"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const info = (caBundle: string | undefined): ServerInfo =>
        ({
          name: "ex1",
          fqdn: "localhost",
          site: "usa",
          version: 2016,
          versionClass: "2013+",
          clientAccess: true,
          mailbox: true,
          address: `127.0.0.1:${port}`,
          internalNLBBypassUrl: undefined,
          maintenance: false,
          insecureSkipVerify: false,
          caBundle,
          vdirs: new Map([["Owa", { name: "ex1-owa", server: "ex1", service: "Owa", internalUrl: `https://localhost:${port}/owa` }]]),
        }) as unknown as ServerInfo;
      const targetsFor = (ca: string | undefined) => probeTargets({ servers: new Map([["ex1", info(ca)]]) } as unknown as Parameters<typeof probeTargets>[0]);
      const [withCa] = targetsFor(certs.ca);
      expect(withCa!.ca).toBe(certs.ca);
      expect((await probe(withCa!, 3000)).ok).toBe(true);
      const [without] = targetsFor(undefined);
      const r = await probe(without!, 3000);
      expect(r.ok).toBe(false);
      expect(r.detail).toMatch(/VERIFY|CERT|ISSUER/);
      // The chart's bundle (the prober's own ca) does the same for servers without one.
      expect((await probe(without!, 3000, certs.ca)).ok).toBe(true);
    } finally {
      server.close();
    }
  });

  it("chart: upstreamTls.caBundle becomes a ConfigMap mounted in Envoy and the operator, and --upstream-ca names it", () => {
    const objs = render({ set: { "mailboxDirectory.configMap": "mailboxes", "upstreamTls.caBundle": CA_PEM } });
    const cm = find(objs, "ConfigMap", "-upstream-ca");
    expect(cm.data["ca.crt"]).toBe(CA_PEM);
    const op = find(objs, "Deployment", "-operator");
    expect(container(op, "operator").args).toContain("--upstream-ca=/etc/cas-gateway/upstream-ca/ca.crt");
    const gw = find(objs, "Deployment", "-gateway");
    for (const c of [container(op, "operator"), container(gw, "envoy")]) {
      expect(c.volumeMounts).toContainEqual({ name: "upstream-ca", mountPath: "/etc/cas-gateway/upstream-ca", readOnly: true });
    }
    expect(gw.spec.template.spec.volumes).toContainEqual({ name: "upstream-ca", configMap: { name: cm.metadata.name } });
    // An existing ConfigMap (trust-manager) instead.
    const given = render({ set: { "mailboxDirectory.configMap": "mailboxes", "upstreamTls.configMapName": "corp-roots", "upstreamTls.key": "bundle.pem" } });
    expect(given.some((o) => o.kind === "ConfigMap" && String(o.metadata.name).endsWith("-upstream-ca"))).toBe(false);
    expect(container(find(given, "Deployment", "-operator"), "operator").args).toContain("--upstream-ca=/etc/cas-gateway/upstream-ca/bundle.pem");
    // Nothing set: no mount, the system bundle.
    const none = render({ set: { "mailboxDirectory.configMap": "mailboxes" } });
    expect((container(find(none, "Deployment", "-operator"), "operator").args as string[]).some((a) => a.startsWith("--upstream-ca"))).toBe(false);
    // The bundle must hold certificates.
    expect(() => render({ set: { "mailboxDirectory.configMap": "mailboxes", "upstreamTls.caBundle": "oops" } })).toThrow(/must hold PEM certificates/);
  });
});
