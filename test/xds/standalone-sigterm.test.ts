// Issue 20, finding 1: a large manifest file once kept `standalone` from honouring SIGTERM (a 30 MB
// file stopped healthz and Check for minutes and the process ignored the signal). Here a real
// `cas-gateway standalone` process (a child, via tsx) gets a real SIGTERM while it parses a large
// manifest file, and must exit within a few seconds: while running (the file dropped into the
// watched directory; the load worker is terminated mid-parse) and while starting (the file there
// from the beginning).
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = mkdtempSync(join(tmpdir(), "cas-sigterm-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/** A casgateway.io manifest of about `mb` megabytes: one object with very many (unknown) fields, slow to parse. */
function bigManifest(mb: number): string {
  const parts = ["apiVersion: casgateway.io/v1alpha1\nkind: VirtualDirectory\nmetadata:\n  name: huge\nspec:\n"];
  let size = parts[0].length;
  for (let i = 0; size < mb * 1e6; i++) {
    const line = `  key${i}: value-${i}\n`;
    parts.push(line);
    size += line.length;
  }
  return parts.join("");
}

function standalone(org: string): { child: ChildProcess; out: () => string; err: () => string } {
  let out = "";
  let err = "";
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "cli/main.ts",
      "standalone",
      ...["--manifests", org, "--directory", join(org, "mailboxes.csv"), "--site", "usa"],
      ...["--xds-port", "0", "--authz-port", "0", "--admin-port", "0", "--pop3-port", "0", "--imap4-port", "0"],
      ...["--http-port", "0", "--https-port", "0", "--envoy-admin-port", "0", "--envoy-ready-port", "0"],
      // The budget lets the big file through to the parser (the defaults would refuse it unread).
      ...["--max-manifest-file-bytes", String(64 << 20), "--max-manifest-dir-bytes", String(128 << 20)],
      ...["--envoy", "off", "--no-health-checks", "--bootstrap", join(org, "..", `envoy-${children.length}.yaml`), "--log-level", "debug"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

async function until(what: string, f: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM now; resolves with how long the process took to exit and how it exited. */
async function terminate(child: ChildProcess): Promise<{ ms: number; code: number | null; signal: NodeJS.Signals | null }> {
  const t0 = Date.now();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  child.kill("SIGTERM");
  const bound = new Promise<never>((_, rej) => setTimeout(() => rej(new Error("no exit within 30 s of SIGTERM")), 30_000));
  const how = await Promise.race([exited, bound]);
  return { ms: Date.now() - t0, ...how };
}

describe("standalone honours SIGTERM while it parses a large manifest file (issue 20, finding 1)", () => {
  it("running: a 12 MB manifest dropped into the directory is being parsed; SIGTERM exits cleanly within a few seconds", async () => {
    const org = join(root, "running");
    cpSync("examples/contoso", org, { recursive: true });
    const s = standalone(org);
    await until("started", () => s.out().includes("Ctrl-C to stop") || s.child.exitCode !== null, 120_000);
    expect(s.child.exitCode, s.err().slice(-2000)).toBeNull();
    const admin = Number(/(?:organisation page|admin)\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(s.out())![1]);
    writeFileSync(join(org, "zz-huge.yaml"), bigManifest(12));
    // The watcher saw it and the load worker has started on it (the read comes 200 ms after the event).
    await until("file change seen", () => s.err().includes("zz-huge.yaml"), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    // The parse runs off the event loop: the admin port answers meanwhile.
    expect((await fetch(`http://127.0.0.1:${admin}/healthz`, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
    const r = await terminate(s.child);
    // Still parsing when the signal came: the file's rejection (it fails validation) was never reported.
    expect(s.err()).not.toContain("manifests rejected");
    expect(s.err()).toContain('"signal":"SIGTERM"');
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.ms).toBeLessThan(5_000);
  }, 180_000);

  it("starting: with the large file there from the beginning, SIGTERM during the start ends the process at once", async () => {
    const org = join(root, "starting");
    cpSync("examples/contoso", org, { recursive: true });
    writeFileSync(join(org, "zz-huge.yaml"), bigManifest(12));
    const s = standalone(org);
    await new Promise((r) => setTimeout(r, 4000)); // tsx has loaded and the first read has begun
    expect(s.out()).not.toContain("Ctrl-C to stop");
    const r = await terminate(s.child);
    expect(r.code === 0 || r.signal === "SIGTERM", JSON.stringify(r)).toBe(true);
    expect(r.ms).toBeLessThan(5_000);
  }, 180_000);
});
