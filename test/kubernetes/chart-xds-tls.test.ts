// The chart secures ADS (issue 21, point 3), rendered by the real Helm: a CA and certificates made
// with genCA/genSignedCert (or Secrets given by name), the operator serving mutual TLS, the sidecar,
// mail proxy and Envoy presenting the client certificate and checking the Service name, and a
// NetworkPolicy admitting only the gateway pods to the ADS port. The generated certificates are then
// used for real: the ADS server with the server Secret, the sidecar's state client with the client
// Secret and the in-cluster Service name.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { pino } from "pino";
import { gatewayStateResource } from "../../model/gateway-state.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { Snapshot } from "../../operator/xds/server/snapshot.js";
import { sharedCodec } from "../../operator/xds/translate/translate.js";
import { XdsStateSource } from "../../sidecar/state-xds-client.js";
import { container, find, helm, CHART, render, type K8sObject } from "./helm.js";

const VALUES = { "mailboxDirectory.configMap": "mailboxes" };
const XDS_HOST = "rel-cas-gateway-operator-xds.cas-system.svc";
const dir = mkdtempSync(join(tmpdir(), "cas-chart-xds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const secretData = (s: K8sObject, key: string) => Buffer.from(String(s.data[key]), "base64").toString("utf8");
const volumes = (d: K8sObject) => d.spec.template.spec.volumes as K8sObject[];
const mounts = (c: K8sObject) => (c.volumeMounts ?? []) as K8sObject[];
const xdsCluster = (objs: K8sObject[]) => {
  const cm = find(objs, "ConfigMap", "-bootstrap");
  const b = parse(String(cm.data["bootstrap.yaml"])) as K8sObject;
  return { bootstrap: b, cluster: (b.static_resources.clusters as K8sObject[]).find((c) => c.name === "cas-gateway/xds")! };
};

describe("chart: ADS over mutual TLS and the NetworkPolicy (helm template)", () => {
  const objs = render({ set: VALUES });

  it("makes a CA, a server certificate for the xDS Service and a client certificate, in two tls Secrets", () => {
    const server = find(objs, "Secret", "-operator-xds-server");
    const client = find(objs, "Secret", "-gateway-xds-client");
    for (const s of [server, client]) {
      expect(s.type).toBe("kubernetes.io/tls");
      expect(Object.keys(s.data).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    }
    expect(secretData(server, "ca.crt")).toBe(secretData(client, "ca.crt"));
    const ca = new X509Certificate(secretData(server, "ca.crt"));
    const serverCert = new X509Certificate(secretData(server, "tls.crt"));
    const clientCert = new X509Certificate(secretData(client, "tls.crt"));
    expect(serverCert.verify(ca.publicKey)).toBe(true);
    expect(clientCert.verify(ca.publicKey)).toBe(true);
    expect(serverCert.checkHost(XDS_HOST)).toBe(XDS_HOST);
    expect(serverCert.subjectAltName).toContain("DNS:rel-cas-gateway-operator-xds.cas-system");
  });

  it("the operator serves mutual TLS from the server Secret", () => {
    const op = find(objs, "Deployment", "-operator");
    const c = container(op, "operator");
    expect(c.args).toEqual(
      expect.arrayContaining(["--xds-tls-cert=/etc/cas-gateway/xds-tls/tls.crt", "--xds-tls-key=/etc/cas-gateway/xds-tls/tls.key", "--xds-client-ca=/etc/cas-gateway/xds-tls/ca.crt"]),
    );
    expect(mounts(c)).toContainEqual({ name: "xds-tls", mountPath: "/etc/cas-gateway/xds-tls", readOnly: true });
    expect(volumes(op)).toContainEqual({ name: "xds-tls", secret: { secretName: "rel-cas-gateway-operator-xds-server" } });
  });

  it("the sidecar and the mail proxy present the client certificate and check the Service name; Envoy's bootstrap does the same", () => {
    const gw = find(objs, "Deployment", "-gateway");
    for (const name of ["sidecar", "mail-proxy"]) {
      const c = container(gw, name);
      expect(c.args, name).toEqual(
        expect.arrayContaining([
          "--xds-ca=/etc/cas-gateway/xds-tls/ca.crt",
          "--xds-cert=/etc/cas-gateway/xds-tls/tls.crt",
          "--xds-key=/etc/cas-gateway/xds-tls/tls.key",
          `--xds-server-name=${XDS_HOST}`,
        ]),
      );
      expect(mounts(c), name).toContainEqual({ name: "xds-tls", mountPath: "/etc/cas-gateway/xds-tls", readOnly: true });
    }
    expect(mounts(container(gw, "envoy"))).toContainEqual({ name: "xds-tls", mountPath: "/etc/cas-gateway/xds-tls", readOnly: true });
    expect(volumes(gw)).toContainEqual({ name: "xds-tls", secret: { secretName: "rel-cas-gateway-gateway-xds-client" } });

    const { bootstrap, cluster } = xdsCluster(objs);
    const tls = cluster.transport_socket.typed_config;
    expect(tls["@type"]).toBe("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    expect(tls.sni).toBe(XDS_HOST);
    // Certificate and CA over file-based SDS (files in the same ConfigMap, watched), so a renewed xDS
    // Secret is used without restarting Envoy.
    const fileSds = (name: string, file: string) => ({
      name,
      sds_config: { path_config_source: { path: `/etc/envoy/${file}`, watched_directory: { path: "/etc/envoy" } }, resource_api_version: "V3" },
    });
    expect(tls.common_tls_context.tls_certificate_sds_secret_configs).toEqual([fileSds("cas-gateway/xds-client", "xds-client-sds.yaml")]);
    expect(tls.common_tls_context.combined_validation_context).toEqual({
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: XDS_HOST } }] },
      validation_context_sds_secret_config: fileSds("cas-gateway/xds-ca", "xds-ca-sds.yaml"),
    });
    const cm = find(objs, "ConfigMap", "-bootstrap");
    const client = parse(String(cm.data["xds-client-sds.yaml"])) as K8sObject;
    const ca = parse(String(cm.data["xds-ca-sds.yaml"])) as K8sObject;
    expect(client.resources).toEqual([
      {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        name: "cas-gateway/xds-client",
        tls_certificate: {
          certificate_chain: { filename: "/etc/cas-gateway/xds-tls/tls.crt" },
          private_key: { filename: "/etc/cas-gateway/xds-tls/tls.key" },
          watched_directory: { path: "/etc/cas-gateway/xds-tls" },
        },
      },
    ]);
    expect(ca.resources).toEqual([
      {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        name: "cas-gateway/xds-ca",
        validation_context: { trusted_ca: { filename: "/etc/cas-gateway/xds-tls/ca.crt" }, watched_directory: { path: "/etc/cas-gateway/xds-tls" } },
      },
    ]);
    for (const f of [client, ca]) expect(sharedCodec().encode("envoy.service.discovery.v3.DiscoveryResponse", f).violations).toEqual([]);
    // The rendered bootstrap still passes Envoy's Bootstrap proto validation.
    expect(sharedCodec().encode("envoy.config.bootstrap.v3.Bootstrap", bootstrap).violations).toEqual([]);
  });

  it("the certificates Helm made work: the ADS server with the server Secret, the sidecar's client with the client Secret", async () => {
    const server = find(objs, "Secret", "-operator-xds-server");
    const client = find(objs, "Secret", "-gateway-xds-client");
    const write = (s: K8sObject, prefix: string) => {
      for (const k of ["ca.crt", "tls.crt", "tls.key"]) writeFileSync(join(dir, `${prefix}-${k}`), secretData(s, k));
      return (k: string) => join(dir, `${prefix}-${k}`);
    };
    const sp = write(server, "server");
    const cp = write(client, "client");
    const silent = pino({ level: "silent" });
    const ads = new AdsServer({ logger: silent, tls: { certFile: sp("tls.crt"), keyFile: sp("tls.key"), clientCaFile: sp("ca.crt") } });
    const port = await ads.listen(0);
    try {
      const org = await loadOrganisation("examples/contoso");
      ads.cache.setSnapshot("*", new Snapshot([gatewayStateResource(org.manifests.objects.map((o) => o.object), org.topology.version, [])], org.topology.version));
      const src = new XdsStateSource({
        address: `127.0.0.1:${port}`,
        node: { id: "gw-0", cluster: "cas-gateway" },
        tls: { caFile: cp("ca.crt"), certFile: cp("tls.crt"), keyFile: cp("tls.key"), serverName: XDS_HOST },
        logger: silent,
      }).start();
      try {
        expect((await src.ready()).topology.version).toBe(org.topology.version);
      } finally {
        await src.stop();
      }
    } finally {
      ads.forceClose();
    }
  });

  it("a NetworkPolicy admits only the gateway pods to the ADS port; the admin port stays reachable", () => {
    const np = find(objs, "NetworkPolicy", "-operator");
    expect(np.spec.podSelector.matchLabels).toMatchObject({ "app.kubernetes.io/component": "operator", "app.kubernetes.io/instance": "rel" });
    expect(np.spec.policyTypes).toEqual(["Ingress"]);
    const [xds, admin] = np.spec.ingress as K8sObject[];
    expect(xds).toEqual({
      from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "cas-gateway", "app.kubernetes.io/instance": "rel", "app.kubernetes.io/component": "gateway" } } }],
      ports: [{ port: 18000, protocol: "TCP" }],
    });
    expect(admin).toEqual({ ports: [{ port: 9090, protocol: "TCP" }] });
    // The gateway pods carry exactly the labels the policy admits.
    const gwLabels = find(objs, "Deployment", "-gateway").spec.template.metadata.labels;
    expect(gwLabels).toMatchObject(xds.from[0].podSelector.matchLabels);
    expect(render({ set: { ...VALUES, "networkPolicy.enabled": false } }).some((o) => o.kind === "NetworkPolicy")).toBe(false);
  });

  it("Secrets given by name are used instead (cert-manager); one without the other is refused", () => {
    const given = render({ set: { ...VALUES, "xds.tls.serverSecretName": "xds-server", "xds.tls.clientSecretName": "xds-client" } });
    expect(given.filter((o) => o.kind === "Secret")).toEqual([]);
    expect(volumes(find(given, "Deployment", "-operator"))).toContainEqual({ name: "xds-tls", secret: { secretName: "xds-server" } });
    expect(volumes(find(given, "Deployment", "-gateway"))).toContainEqual({ name: "xds-tls", secret: { secretName: "xds-client" } });
    const r = helm(["template", "rel", CHART, "--namespace", "cas-system", "--set-string", "mailboxDirectory.configMap=mailboxes", "--set-string", "xds.tls.serverSecretName=xds-server"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("xds.tls.serverSecretName and xds.tls.clientSecretName go together");
  });

  it("xds.tls.enabled=false: plaintext ADS, no Secrets, no TLS arguments, no transport_socket", () => {
    const plain = render({ set: { ...VALUES, "xds.tls.enabled": false } });
    expect(plain.filter((o) => o.kind === "Secret")).toEqual([]);
    expect((container(find(plain, "Deployment", "-operator"), "operator").args as string[]).some((a) => a.startsWith("--xds-tls"))).toBe(false);
    expect((container(find(plain, "Deployment", "-gateway"), "sidecar").args as string[]).some((a) => a.startsWith("--xds-ca"))).toBe(false);
    expect(xdsCluster(plain).cluster.transport_socket).toBeUndefined();
    expect(find(plain, "ConfigMap", "-bootstrap").data["xds-client-sds.yaml"]).toBeUndefined();
  });
});
