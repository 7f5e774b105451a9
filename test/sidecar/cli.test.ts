// `cas-gateway sidecar` as a real process: flags, ports, a Check over gRPC, the admin port, SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { SidecarFlags, startSidecar } from "../../cli/commands/sidecar.js";
import { ControlPlane } from "../../operator/controlplane.js";
import { FileProvider } from "../../operator/provider/file-provider.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { loadAffinityKey } from "../../sidecar/authz/affinity.js";
import { authzClient, envoyCheckRequest, headerMap } from "./envoy-request.js";

const tmp = mkdtempSync(path.join(tmpdir(), "cas-sidecar-cli-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

function cli(args: string[]): { child: ChildProcess; out: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const out = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (/sidecar gRPC on/.test(stdout)) resolve(stdout);
    });
    child.on("exit", () => reject(new Error(`exited early: ${stderr}`)));
  });
  out.catch(() => {});
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exit, stderr: () => stderr };
}

describe("cas-gateway sidecar (process)", () => {
  it("serves Check and the admin port from manifest/CSV files, and stops on SIGTERM", async () => {
    const keyFile = path.join(tmp, "affinity.key");
    writeFileSync(keyFile, `${"k".repeat(40)}\n`);
    const p = cli([
      "sidecar", "--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv",
      "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--affinity-key-file", keyFile, "--log-level", "warn",
    ]);
    const line = await p.out;
    const m = /sidecar gRPC on 127\.0\.0\.1:(\d+), admin on 127\.0\.0\.1:(\d+)/.exec(line);
    expect(m).not.toBeNull();
    const client = authzClient(Number(m![1]));
    try {
      const r = await client.check(
        envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from("alice@contoso.com:x").toString("base64")}` } }),
      );
      expect(headerMap(r.ok_response?.headers)["x-cas-decision"]).toBe("local");
    } finally {
      client.close();
    }
    const admin = `http://127.0.0.1:${m![2]}`;
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(/cas_sidecar_decisions_total\{decision="local"\} 1/);
    p.child.kill("SIGTERM");
    expect(await p.exit).toBe(0);
  }, 60_000);

  it("refuses bad flags and bad files with a clear message", async () => {
    const bad = cli(["sidecar", "--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv", "--on-directory-failure", "maybe"]);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/--on-directory-failure/);
    const missing = cli(["sidecar", "--manifests", path.join(tmp, "nope"), "--directory", "examples/contoso/mailboxes.csv", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    expect(await missing.exit).toBe(1); // the command line is right, the directory is not: invalid input
  }, 60_000);

  it("--xds: takes topology and health from the control plane's ADS service; not ready until then", async () => {
    const silent = pino({ level: "silent" });
    const ads = new AdsServer({ logger: silent });
    const adsPort = await ads.listen(0);
    const sidecar = await startSidecar(
      SidecarFlags.parse({
        xds: `127.0.0.1:${adsPort}`,
        nodeId: "sidecar-test",
        nodeCluster: "cas-gateway",
        directory: "examples/contoso/mailboxes.csv",
        listen: "127.0.0.1:0",
        admin: "127.0.0.1:0",
        affinityTtl: "3600",
        down: [],
        logLevel: "silent",
      }),
    );
    const cp = new ControlPlane({
      provider: new FileProvider({ manifestDir: "examples/contoso", debounceMs: 50, rescanMs: 0, logger: silent }),
      cache: ads.cache,
      health: { down: () => [], subscribe: () => () => {} },
      logger: silent,
    });
    const client = authzClient(sidecar.grpcPort);
    try {
      expect((await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`)).status).toBe(503);
      await cp.start();
      await expect.poll(async () => (await fetch(`http://127.0.0.1:${sidecar.adminPort}/readyz`)).status, { timeout: 20_000 }).toBe(200);
      const r = await client.check(
        envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from("jun@contoso.com:x").toString("base64")}` } }),
      );
      expect(headerMap(r.ok_response?.headers)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
    } finally {
      client.close();
      await sidecar.stop();
      await cp.stop();
      await ads.forceClose();
    }
  }, 60_000);

  it("rejects an affinity key shorter than 32 bytes", async () => {
    const f = path.join(tmp, "short.key");
    writeFileSync(f, "short\n");
    await expect(loadAffinityKey(f)).rejects.toThrow(/at least 32/);
  });
});
