// The Helm chart, checked WITHOUT helm (not installable here; no npm or Debian package renders Go
// templates): Chart.yaml and values.yaml parse, values.yaml validates against values.schema.json
// (ajv, draft-07), generated files (CRDs, Envoy bootstrap) match their sources, and the templates are
// linted for the mistakes that matter (unbalanced blocks, undefined .Values paths or helpers,
// missing security contexts, over-broad RBAC). The templates are NOT rendered: test/e2e/kind.sh
// installs the chart with the real helm.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { Ajv } from "ajv";
import { Command } from "commander";
import { CHART_DIR, expectedGeneratedFiles } from "../../charts/cas-gateway/hack/sync.js";
import { registerCommands } from "../../cli/commands/index.js";

const read = (rel: string) => readFileSync(join(CHART_DIR, rel), "utf8");
const templates = readdirSync(join(CHART_DIR, "templates")).sort();
const values = parse(read("values.yaml")) as Record<string, unknown>;
const schema = JSON.parse(read("values.schema.json")) as object;

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: true });
  return ajv.compile(schema);
}

describe("Helm chart charts/cas-gateway (static checks; helm itself is not available here)", () => {
  it("Chart.yaml is a v2 application chart with a semantic version", () => {
    const chart = parse(read("Chart.yaml")) as Record<string, string>;
    expect(chart.apiVersion).toBe("v2");
    expect(chart.name).toBe("cas-gateway");
    expect(chart.type).toBe("application");
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+$/);
    const pkg = JSON.parse(readFileSync(join(CHART_DIR, "..", "..", "package.json"), "utf8")) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
  });

  it("values.yaml validates against values.schema.json; bad values are refused", () => {
    const validate = validator();
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    const bad = (patch: (v: Record<string, any>) => void) => {
      const v = structuredClone(values) as Record<string, any>;
      patch(v);
      return validate(v);
    };
    expect(bad((v) => (v.gateway.envoy.image.tag = "latest"))).toBe(false); // Envoy must be pinned
    expect(bad((v) => (v.gateway.containerPorts.https = 443))).toBe(false); // unprivileged in the pod
    expect(bad((v) => (v.watch.namespace = "Not_A_Namespace"))).toBe(false);
    expect(bad((v) => (v.operator.replicass = 2))).toBe(false); // typos are caught
    expect(bad((v) => (v.gateway.service.type = "Ingress"))).toBe(false);
    expect(bad((v) => (v.watch.namespace = "mail"))).toBe(true);
  });

  it("generated files (CRDs from npm run gen:crds, Envoy bootstrap) are up to date: run npm run chart:sync", () => {
    const expected = expectedGeneratedFiles();
    expect([...expected.keys()].filter((k) => k.startsWith("crds/"))).toHaveLength(4);
    for (const [rel, text] of expected) expect(read(rel), rel).toBe(text);
    const onDisk = readdirSync(join(CHART_DIR, "crds")).map((f) => join("crds", f));
    expect(onDisk.sort()).toEqual([...expected.keys()].filter((k) => k.startsWith("crds/")).sort());
    for (const f of onDisk) {
      const crd = parse(read(f)) as { kind: string; spec: { scope: string; versions: { subresources?: object }[] } };
      expect(crd.kind).toBe("CustomResourceDefinition");
      expect(crd.spec.versions[0].subresources).toHaveProperty("status");
    }
  });

  it("the Envoy bootstrap, with its placeholders filled in, points ADS at the operator's xDS Service", () => {
    const text = read("files/envoy-bootstrap.yaml")
      .replace('{{ include "cas-gateway.xdsHost" . }}', "rel-cas-gateway-operator-xds.ns.svc")
      .replace("{{ .Values.operator.xdsPort }}", String((values.operator as { xdsPort: number }).xdsPort))
      .replace("{{ .Values.gateway.envoy.adminPort }}", "9901");
    expect(text).not.toContain("{{");
    const b = parse(text) as any;
    expect(b.dynamic_resources.ads_config).toMatchObject({ api_type: "GRPC", transport_api_version: "V3" });
    const ep = b.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(ep).toEqual({ address: "rel-cas-gateway-operator-xds.ns.svc", port_value: 18000 });
    expect(b.admin.address.socket_address.address).toBe("127.0.0.1");
  });

  it("templates: balanced blocks, known helpers, .Values paths that exist in values.yaml", () => {
    const helpers = read("templates/_helpers.tpl");
    const defined = new Set([...helpers.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]));
    const problems: string[] = [];
    for (const f of templates) {
      const t = read(join("templates", f));
      if (t.includes("\t")) problems.push(`${f}: contains a tab`);
      const actions = [...t.matchAll(/\{\{-?\s*(.*?)\s*-?\}\}/gs)].map((m) => m[1]);
      let depth = 0;
      for (const a of actions) {
        if (/^(if|range|with|define|block)\b/.test(a)) depth++;
        else if (/^end\b/.test(a)) depth--;
        if (depth < 0) problems.push(`${f}: {{ end }} without a block`);
      }
      if (depth !== 0) problems.push(`${f}: ${depth} unclosed block(s)`);
      for (const m of t.matchAll(/include\s+"([^"]+)"/g)) if (!defined.has(m[1])) problems.push(`${f}: include of undefined "${m[1]}"`);
      for (const m of t.matchAll(/\.Values((?:\.[A-Za-z0-9_]+)+)/g)) {
        const path = m[1].slice(1).split(".");
        let v: unknown = values;
        for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
        if (v === undefined) problems.push(`${f}: .Values.${path.join(".")} is not in values.yaml`);
      }
      for (const m of t.matchAll(/\.Files\.Get\s+"([^"]+)"/g)) {
        try {
          read(m[1]);
        } catch {
          problems.push(`${f}: .Files.Get "${m[1]}" does not exist`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("every container runs with the restricted security context; pods are non-root with RuntimeDefault seccomp", () => {
    const helpers = read("templates/_helpers.tpl");
    const ctx = /define "cas-gateway\.containerSecurityContext" -\}\}([\s\S]*?)\{\{- end/.exec(helpers)![1];
    expect(parse(ctx)).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    for (const f of ["operator-deployment.yaml", "gateway-deployment.yaml"]) {
      const t = read(join("templates", f));
      const containers = (t.match(/^ {10}image: /gm) ?? []).length;
      const secured = (t.match(/include "cas-gateway\.containerSecurityContext"/g) ?? []).length;
      expect(containers, f).toBeGreaterThan(0);
      expect(secured, f).toBe(containers);
      expect(t).toContain('include "cas-gateway.podSecurityContext"');
      expect(t).toMatch(/readinessProbe:/);
    }
  });

  it("RBAC is least privilege: read the four kinds, patch only their /status, no wildcards, no spec writes", () => {
    const t = read("templates/operator-rbac.yaml");
    // Strip template actions to read the rules as YAML.
    const docs = parseAllDocuments(t.replace(/\{\{[^}]*\}\}/g, "x")).map((d) => d.toJS() as any);
    const rules = docs.filter((d) => d?.rules).flatMap((d) => d.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
    expect(rules.length).toBeGreaterThan(0);
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
      if (r.resources.includes("leases")) expect(r.verbs.sort()).toEqual(["create", "get", "update"]);
    }
    expect(rules.some((r) => r.resources.includes("events") && r.verbs.includes("create"))).toBe(true);
    expect(t).toMatch(/ternary "Role" "ClusterRole"/); // one namespace → Role, all → ClusterRole
  });

  it("the gateway Service publishes 443/80/993/995/143/110/587 and the operator Deployment runs 2 replicas", () => {
    const svc = (values.gateway as any).service.ports as Record<string, number>;
    expect(Object.values(svc).sort((a, b) => a - b)).toEqual([80, 110, 143, 443, 587, 993, 995]);
    expect((values.gateway as any).service.type).toBe("LoadBalancer");
    expect((values.operator as any).replicas).toBe(2);
    expect((values.podDisruptionBudget as any).enabled).toBe(true);
    expect(read("templates/NOTES.txt")).toContain("kubectl apply");
  });

  it("every cas-gateway flag the chart passes exists in the CLI", () => {
    const program = new Command();
    registerCommands(program);
    const flagsOf = new Map(program.commands.map((c) => [c.name(), new Set(c.options.map((o) => o.long))]));
    const used: string[] = [];
    for (const f of ["operator-deployment.yaml", "gateway-deployment.yaml"]) {
      const t = read(join("templates", f));
      for (const block of t.split(/^\s+args:\s*$/m).slice(1)) {
        const items = [...block.matchAll(/^\s+- (\S.*)$/gm)].map((m) => m[1]);
        const sub = items[0];
        if (!flagsOf.has(sub)) continue; // not a cas-gateway container (Envoy)
        for (const it of items.slice(1)) {
          const m = /^"?(--[a-z0-9-]+)/.exec(it);
          if (m) used.push(`${sub} ${m[1]}`);
          if (/^(env|ports|name):/.test(it)) break;
        }
      }
    }
    // Flags in the shared directory helper go to both the sidecar and the mail proxy.
    const helpers = read("templates/_helpers.tpl");
    const dirArgs = /define "cas-gateway\.directoryArgs" -\}\}([\s\S]*?)\{\{- end -\}\}/.exec(helpers)![1];
    for (const m of dirArgs.matchAll(/^- (--[a-z0-9-]+)/gm)) for (const sub of ["sidecar", "mail-proxy"]) used.push(`${sub} ${m[1]}`);
    expect(used.filter((u) => u.endsWith(" --ldap-password-file"))).toHaveLength(2);
    expect(used.length).toBeGreaterThan(20);
    const unknown = [...new Set(used.filter((u) => !flagsOf.get(u.split(" ")[0])!.has(u.split(" ")[1])))].sort();
    // The gateway pod's sidecar and mail proxy take the topology from the operator over xDS
    // (--xds/--node-id). Any flag the CLI does not know fails the test.
    expect(unknown).toEqual([]);
  });
});
