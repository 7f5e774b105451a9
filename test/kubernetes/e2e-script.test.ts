// test/e2e/kind.sh cannot run here (no Docker engine, kind or helm). What can be checked: it parses,
// shellcheck finds nothing, it says "skipped" (exit 0) when a tool is missing, and the organisation
// it applies (the example rewritten by test/e2e/backends/overlay.mjs) validates.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { buildTopology } from "../../model/topology/build.js";

const ROOT = join(import.meta.dirname, "..", "..");
const SCRIPT = join(ROOT, "test", "e2e", "kind.sh");
const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
const out = mkdtempSync(join(tmpdir(), "kind-overlay-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("test/e2e/kind.sh", () => {
  it("is valid bash", () => {
    expect(spawnSync("bash", ["-n", SCRIPT]).status).toBe(0);
  });

  it.skipIf(!hasShellcheck)("passes shellcheck (skipped when shellcheck is not installed)", () => {
    const r = spawnSync("shellcheck", ["-S", "style", SCRIPT], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("prints 'skipped' and exits 0 when a required tool is missing, without creating anything", () => {
    // A PATH with only bash and dirname: no docker, kind or helm.
    const bin = mkdtempSync(join(tmpdir(), "kind-path-"));
    for (const tool of ["bash", "dirname"]) symlinkSync(execFileSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(), join(bin, tool));
    const r = spawnSync(join(bin, "bash"), [SCRIPT], { encoding: "utf8", env: { PATH: bin, HOME: process.env.HOME ?? "/tmp" } });
    rmSync(bin, { recursive: true, force: true });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^kind e2e: skipped: \w+ is not installed$/m);
    expect(r.stdout).not.toMatch(/PASS/);
  });

  it("the overlay of examples/contoso it applies is valid and points every server at a stand-in", async () => {
    execFileSync("node", [join(ROOT, "test", "e2e", "backends", "overlay.mjs"), out, "cas-gateway:e2e"]);
    const set = await loadManifestDir(join(out));
    expect(set.errors).toEqual([]);
    const topo = buildTopology(set.objects.map((o) => o.object));
    expect(topo.problems.filter((p) => p.severity === "error")).toEqual([]);
    for (const s of topo.servers.values()) expect(s.address).toBe(`exch-${s.name}.cas-backends.svc.cluster.local:443`);
    const backends = readFileSync(join(out, "backends.yaml"), "utf8");
    expect(backends.match(/^kind: Deployment$/gm)).toHaveLength(topo.servers.size + topo.sites.size);
    expect(backends).toContain("image: dovecot/dovecot:2.3.21");
  });
});
