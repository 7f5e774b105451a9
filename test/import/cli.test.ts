// `cas-gateway import` as a command: exit codes and what it prints.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runImport } from "../../cli/commands/import.js";
import { EXPORTS_DIR } from "./example-exports.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "cas-import-cli-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("cas-gateway import (command)", () => {
  it("exit 2 naming the flag for a bad option value", async () => {
    expect(await runImport({ from: EXPORTS_DIR, out: join(tmp, "a"), hostname: ["usa"] })).toEqual({ exitCode: 2, stdout: "", stderr: "--hostname: must be SITE=HOST, e.g. usa=mail.contoso.com\n" });
    expect((await runImport({ from: EXPORTS_DIR, out: join(tmp, "a"), exchange2003Pop3: "995:STARTTLS" })).stderr).toBe("--exchange2003-pop3: must be PORT:SSL, PORT:TLS or PORT:NONE, e.g. 995:SSL\n");
    expect((await runImport({ from: EXPORTS_DIR, out: join(tmp, "a"), namespace: "Exchange" })).stderr).toMatch(/^--namespace: must be a lowercase RFC 1123 name/);
  });

  it("exit 1 listing every error, and nothing written", async () => {
    const r = await runImport({ from: EXPORTS_DIR, out: join(tmp, "b"), hostname: ["mars=mail.contoso.com"] });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^--hostname: mars=mail\.contoso\.com: no site mars among the imported sites/);
    expect(r.stderr).toMatch(/\nimport failed: 1 error\(s\); nothing written to .*\/b\n$/);
    expect((await readdir(tmp)).includes("b")).toBe(false);
  });

  it("exit 0 with a summary on stdout and warnings on stderr", async () => {
    const r = await runImport({ from: EXPORTS_DIR, out: join(tmp, "c"), hostname: ["usa=mail.contoso.com"], exchange2003Pop3: "995:SSL", exchange2003Imap4: "993:SSL", namespace: "exchange" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^imported 3 sites, 17 servers, 115 virtual directories, 9 databases into .*\/c \(databases\.yaml, site-asia\.yaml, site-europe\.yaml, site-usa\.yaml\); 4 warning\(s\)\n/);
    expect(r.stderr.split("\n").filter(Boolean).every((l) => l.startsWith("warning: "))).toBe(true);
    expect((await readdir(join(tmp, "c"))).sort()).toEqual(["databases.yaml", "site-asia.yaml", "site-europe.yaml", "site-usa.yaml"]);
  });
});
