import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runRender } from "./render.js";

const run = promisify(execFile);

describe("cas-gateway render", () => {
  it("prints a DiscoveryResponse-like listing per type for contoso (JSON)", async () => {
    const r = await runRender({ manifests: "examples/contoso", json: true, tlsCert: "/tls/tls.crt", tlsKey: "/tls/tls.key" });
    expect(r.exitCode).toBe(0);
    const listing = JSON.parse(r.stdout) as Array<{ type_url: string; version_info: string; resources: Array<Record<string, unknown>> }>;
    expect(listing.map((l) => l.type_url)).toEqual([
      "type.googleapis.com/envoy.config.listener.v3.Listener",
      "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
      "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    ]);
    expect(listing[0].resources.map((x) => x.name)).toContain("https");
    expect(listing[2].resources.every((x) => x["@type"] === listing[2].type_url)).toBe(true);
    // Warnings (contoso has none that are errors) do not fail the command.
    expect(r.stderr.every((l) => l.includes("warning"))).toBe(true);
  });

  it("YAML by default; without a certificate there is no HTTPS listener", async () => {
    const r = await runRender({ manifests: "examples/contoso" });
    expect(r.exitCode).toBe(0);
    const doc = parse(r.stdout) as { listing: Array<{ resources: Array<{ name: string }> }> };
    expect(doc.listing[0].resources.map((x) => x.name)).toEqual(["http", "imap4", "pop3"]);
  });

  it("exit 1 with file:line errors when the manifests are bad", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "render-"));
    try {
      await writeFile(
        path.join(dir, "bad.yaml"),
        [
          "apiVersion: casgateway.io/v1alpha1",
          "kind: ClientAccessServer",
          "metadata:",
          "  name: orphan",
          "spec:",
          "  site: nowhere",
          "  fqdn: orphan.example.com",
          '  exchangeVersion: "2016"',
          "  roles: [ClientAccess]",
          "",
        ].join("\n"),
      );
      const r = await runRender({ manifests: dir });
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.join("\n")).toMatch(/bad\.yaml:6:\d+: ClientAccessServer\/orphan: spec\.site: .*nowhere/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Malformed or incomplete flags are usage errors: exit 2 (cli/errors.ts), not 1 (invalid input).
  it("bad flags are refused as usage errors (exit 2)", async () => {
    const r = await runRender({ manifests: "examples/contoso", sidecar: "no-port" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr[0]).toMatch(/sidecar: expected HOST:PORT/);
    expect(r.stderr.at(-1)).toMatch(/cas-gateway render --help/);
    const r2 = await runRender({ manifests: "examples/contoso", tlsCert: "/a" });
    expect(r2.exitCode).toBe(2);
  });

  it("--bootstrap prints an Envoy bootstrap pointing at the ADS server", async () => {
    const r = await runRender({ manifests: "examples/contoso", bootstrap: true, json: true, xds: "10.1.2.3:18000", nodeId: "gw-7" });
    const b = JSON.parse(r.stdout) as { node: { id: string }; static_resources: { clusters: Array<{ load_assignment: unknown }> } };
    expect(b.node.id).toBe("gw-7");
    expect(JSON.stringify(b.static_resources.clusters[0].load_assignment)).toContain("10.1.2.3");
  });

  it("is wired into the cas-gateway program", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "cli/main.ts", "render", "--manifests", "examples/contoso", "--json", "--no-health-checks"], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const listing = JSON.parse(stdout) as Array<{ type_url: string; resources: Array<Record<string, unknown>> }>;
    const clusters = listing.find((l) => l.type_url.endsWith("Cluster"))!;
    expect(clusters.resources.some((c) => "health_checks" in c)).toBe(false);
  }, 60_000);
});
