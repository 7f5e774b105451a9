// test/e2e/kind.sh cannot run here (no Docker engine, kind or helm). What can be checked: it parses,
// shellcheck finds nothing, it says "skipped" (exit 0) when a tool is missing, and the organisation
// it applies (the example rewritten by test/e2e/backends/overlay.mjs) validates.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { buildTopology } from "../../model/topology/build.js";
import { makeTestCerts } from "../mail/certs.js";

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

  const script = readFileSync(SCRIPT, "utf8");

  it("rolls the gateway out while an ActiveSync Ping is open, and requires the Ping's answer", () => {
    const ping = script.indexOf("Cmd=Ping");
    const restart = script.indexOf('rollout restart "deploy/$GW_SVC"');
    const waitPing = script.indexOf('wait "$PING_PID"');
    expect(ping).toBeGreaterThan(0);
    expect(restart).toBeGreaterThan(ping); // the rollout starts while the Ping is in flight...
    expect(waitPing).toBeGreaterThan(restart); // ...and the script waits for the Ping afterwards
    expect(script.slice(ping, restart)).toMatch(/--data-binary '' >"\$WORK\/ping\.code" 2>"\$WORK\/ping\.err" &\nPING_PID=\$!/);
    expect(script).toMatch(/\[\[ "\$PING_CODE" == 200 \]\] && grep -q 'Ping answered after'/);
    expect(script).toContain("deletionTimestamp"); // the old pod is seen draining, not already gone
  });

  it("renews the front-door certificate and requires the new serial from the same, unrestarted pod", () => {
    const renew = script.indexOf('create secret tls cas-gateway-tls --cert="$WORK/front2.crt"');
    expect(renew).toBeGreaterThan(script.indexOf("rollout restart"));
    expect(script).toMatch(/openssl s_client -connect 127\.0\.0\.1:18443 -servername usa\.contoso\.com/);
    expect(script).toMatch(/if \[\[ "\$NOW" == "\$WANT" && "\$AFTER_POD" == "\$POD" && "\$AFTER_RESTARTS" == "\$RESTARTS" \]\]/);
  });

  it("the Exchange stand-in holds an ActiveSync Ping (PING_HOLD_SECONDS) and answers everything else at once", async () => {
    const certs = makeTestCerts(join(out, "standin-pki"), "localhost");
    // The stand-in reads TLS_DIR/tls.crt and tls.key (a Secret volume's names).
    const tlsDir = join(out, "standin-tls");
    mkdirSync(tlsDir);
    writeFileSync(join(tlsDir, "tls.crt"), certs.cert);
    writeFileSync(join(tlsDir, "tls.key"), certs.key);
    const child = spawn(process.execPath, [join(ROOT, "test", "e2e", "backends", "exchange-standin.mjs")], {
      env: { ...process.env, BACKEND_NAME: "usa-cas01", PORT: "0", TLS_DIR: tlsDir, PING_HOLD_SECONDS: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let text = "";
        child.stdout!.on("data", (b: Buffer) => {
          text += b.toString();
          const m = /listening on (\d+)/.exec(text);
          if (m) resolve(Number(m[1]));
        });
        child.on("exit", (code) => reject(new Error(`stand-in exited (${code})`)));
      });
      // curl in a child process, asynchronously: the stand-in runs in another process, but keep the
      // event loop free anyway.
      const get = (path: string) =>
        new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
          const started = Date.now();
          const r = spawnSync("curl", ["-sk", "--max-time", "10", "-X", "POST", "-w", "\n%{http_code}", `https://127.0.0.1:${port}${path}`], { encoding: "utf8" });
          if (r.status !== 0) return reject(new Error(r.stderr));
          const lines = r.stdout.trimEnd().split("\n");
          resolve({ status: Number(lines.pop()), body: lines.join("\n").trim(), ms: Date.now() - started });
        });
      const ping = await get("/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=X&DeviceType=Y");
      expect(ping.status).toBe(200);
      expect(ping.body).toMatch(/^usa-cas01 Ping answered after \d+ ms$/);
      expect(ping.ms).toBeGreaterThanOrEqual(900);
      const sync = await get("/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=X&DeviceType=Y");
      expect(sync.body).toMatch(/^usa-cas01 POST /);
      expect(sync.ms).toBeLessThan(900);
    } finally {
      child.kill("SIGTERM");
    }
  });
});
