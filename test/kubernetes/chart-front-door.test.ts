// The chart's ports as clients see them (issue 19): Envoy binds the container ports (8443...), the
// Service publishes 443..., and the operator is told both. The operator's arguments are taken from
// the rendered chart (real helm), parsed as the operator parses them, and translated: the HTTP
// listener's redirect and every route must name the Service's ports, never a container port.
import { describe, expect, it } from "vitest";
import { translateOptionsFrom } from "../../cli/commands/operator.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { envoyRoot } from "../../operator/xds/translate/protos.js";
import { translate } from "../../operator/xds/translate/index.js";
import { operatorFlags } from "./chart-operator.js";
import { container, find, render, type K8sObject } from "./helm.js";

type Obj = Record<string, any>;
const root = envoyRoot();
const decode = (typeUrl: string, bytes: Uint8Array): Obj => {
  const t = root.lookupType(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
  return t.toObject(t.decode(bytes), { enums: String, longs: Number, defaults: false }) as Obj;
};

const VALUES = { "mailboxDirectory.configMap": "mailboxes", "tls.secretName": "front-door" };

describe("chart: redirects and URLs use the Service's ports", () => {
  it("the operator binds the container ports and redirects to the Service's HTTPS port (443: no port)", async () => {
    const objs = render({ set: VALUES });
    const svc = find(objs, "Service", "-gateway");
    const https = (svc.spec.ports as K8sObject[]).find((p) => p.name === "https")!;
    expect(https.port).toBe(443);
    const opts = translateOptionsFrom(operatorFlags(objs));
    const org = await loadOrganisation("examples/contoso");
    const r = translate(org.topology, opts);
    expect(r.problems).toEqual([]);
    const listener = r.listeners.find((l) => l.name === "https")!;
    // The container port the pod exposes under the name the Service targets.
    const envoy = container(find(objs, "Deployment", "-gateway"), "envoy");
    const containerHttps = (envoy.ports as K8sObject[]).find((p) => p.name === "https")!.containerPort;
    expect(containerHttps).toBe(8443);
    expect(decode(listener.typeUrl, listener.encoded).address.socket_address.port_value).toBe(containerHttps);
    const http = decode(r.routes.find((x) => x.name === "http")!.typeUrl, r.routes.find((x) => x.name === "http")!.encoded);
    expect(http.virtual_hosts[0].routes[0].redirect).toEqual({ https_redirect: true });
    for (const rc of r.routes) expect(JSON.stringify(decode(rc.typeUrl, rc.encoded)), rc.name).not.toContain("8443");
  });

  it("a Service on another HTTPS port is the port redirects name", async () => {
    const objs = render({ set: { ...VALUES, "gateway.service.ports.https": 9443 } });
    const r = translate((await loadOrganisation("examples/contoso")).topology, translateOptionsFrom(operatorFlags(objs)));
    const http = r.routes.find((x) => x.name === "http")!;
    expect(decode(http.typeUrl, http.encoded).virtual_hosts[0].routes[0].redirect).toEqual({ https_redirect: true, port_redirect: 9443 });
  });

  it("SMTP (25) and submission (587) only with gateway.smtp.enabled, and then every listener the operator builds is published", async () => {
    const org = await loadOrganisation("examples/contoso");
    const off = render({ set: VALUES });
    const offNames = (find(off, "Service", "-gateway").spec.ports as K8sObject[]).map((p) => p.name);
    expect(offNames).not.toContain("smtp");
    expect(offNames).not.toContain("submission");
    const offListeners = translate(org.topology, translateOptionsFrom(operatorFlags(off))).listeners.map((l) => l.name);
    expect(offListeners).not.toContain("smtp");
    expect(offListeners).not.toContain("submission");

    const sets: Record<string, string | boolean>[] = [{ "gateway.smtp.enabled": true }, { "gateway.smtp.enabled": true, "gateway.smtp.site": "usa" }];
    for (const set of sets) {
      const on = render({ set: { ...VALUES, ...set } });
      const svcPorts = new Map((find(on, "Service", "-gateway").spec.ports as K8sObject[]).map((p) => [p.name as string, p]));
      const containerPorts = new Map(((container(find(on, "Deployment", "-gateway"), "envoy").ports as K8sObject[]) ?? []).map((p) => [p.name as string, p.containerPort as number]));
      expect(svcPorts.get("smtp")?.port).toBe(25);
      expect(svcPorts.get("submission")?.port).toBe(587);
      const r = translate(org.topology, translateOptionsFrom(operatorFlags(on)));
      expect(r.problems).toEqual([]);
      expect(r.listeners.map((l) => l.name)).toEqual(expect.arrayContaining(["smtp", "submission"]));
      // Chart and translator agree: each listener's bound port is a named container port the
      // Service targets, and the Service publishes nothing Envoy does not listen on.
      const bound = new Map(r.listeners.map((l) => [l.name, decode(l.typeUrl, l.encoded).address.socket_address.port_value as number]));
      for (const [name, port] of bound) {
        expect(containerPorts.get(name), `container port for listener ${name}`).toBe(port);
        expect(svcPorts.get(name)?.targetPort, `Service port for listener ${name}`).toBe(name);
      }
      expect([...svcPorts.keys()].sort()).toEqual([...bound.keys()].sort());
      expect(bound.get("smtp")).toBe(8025);
      expect(bound.get("submission")).toBe(8587);
    }
  });
});
