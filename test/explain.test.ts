// `cas-gateway explain` on examples/contoso, run as a user would (the built CLI, or tsx on cli/main.ts), plus
// in-process runs of runExplain for the flag edge cases.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExplain } from "../cli/commands/explain.js";
import { buildNtlmAuthenticate } from "../sidecar/decision/ntlm.js";

const ROOT = join(import.meta.dirname, "..");
const ORG = ["--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv"];

// The built CLI (what CI runs after `npm run build`) when it is at least as new as the source;
// otherwise the TypeScript source through tsx.
const BUILT = join(ROOT, "dist", "cli", "commands", "explain.js");
const USE_BUILT = existsSync(BUILT) && statSync(BUILT).mtimeMs >= statSync(join(ROOT, "cli", "commands", "explain.ts")).mtimeMs;
const ENTRY = USE_BUILT ? [join(ROOT, "bin", "cas-gateway.js")] : ["--import", "tsx", "cli/main.ts"];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...ENTRY, "explain", ...args], { cwd: ROOT, timeout: 150_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 99) : 0, stdout, stderr });
    });
  });
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "cas-explain-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("cas-gateway explain (CLI)", { timeout: 180_000 }, () => {
  it("prints the outcome line, numbered trace and rules for a cross-site OWA user (R-OWA-3 single sign-on)", async () => {
    const r = await cli([...ORG, "--url", "https://mail.contoso.com/owa/", "--user", "frank@contoso.com"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("decision: redirect (sso: auto-submitting sign-on form) → https://europe.contoso.com/owa");
    expect(lines[1]).toBe("  1. request: GET /owa/ → service Owa");
    expect(lines[2]).toBe("  2. receiving site usa (host mail.contoso.com)");
    expect(lines).toContain("  3. identity frank@contoso.com from basic: mailbox frank@contoso.com");
    expect(r.stdout).toContain("database DB-EUR-2010: active copy on europe-mbx01, site europe, Exchange 2010");
    expect(lines.at(-1)).toBe("rules: R-GEN-5, R-OWA-2, R-OWA-3");
  });

  it("--json with --down: a 2016 mailbox follows to the site's 2013+ pool when the active server is down", async () => {
    const r = await cli([...ORG, "--url", "https://mail.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=kenji", "--user", "kenji", "--down", "asia-e2016-01", "--json"]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "asia", cluster: "pool/asia/v2013plus/activesync", rewrite: "eas-proxy" });
    expect(d.rules).toContain("R-EAS-5");
  });

  it("--body-file: Availability for an Exchange 2003 mailbox goes to the 2003 server's /public (R-EWS-3)", async () => {
    const body = join(tmp, "availability.xml");
    writeFileSync(body, `<soap:Envelope><soap:Body><GetUserAvailabilityRequest/></soap:Body></soap:Envelope>`);
    const r = await cli([...ORG, "--url", "https://usa.contoso.com/EWS/Exchange.asmx", "--user", "dave", "--body-file", body]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(
      "decision: local → site usa, server usa-e2003, cluster server/usa-e2003/public, upstream path /public (rewrite public-freebusy), affinity none",
    );
    expect(r.stdout).toContain("  1. request: POST /EWS/Exchange.asmx → service Ews");
  });

  it("bad flags exit 2 with a clear message", async () => {
    const r = await cli([...ORG, "--url", "https://mail.contoso.com/owa/", "--down", "no-such-server"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--down no-such-server: no ClientAccessServer "no-such-server"');
  });
});

describe("runExplain", () => {
  const base = { manifests: join(ROOT, "examples/contoso"), directory: join(ROOT, "examples/contoso/mailboxes.csv") };

  it("IMAP4 login with NTLM for a mailbox in another site (R-POP-4)", async () => {
    const r = await runExplain({ ...base, url: "imap://mail.contoso.com", user: "frank", mechanism: "NTLM" });
    expect(r.stdout.split("\n")[0]).toBe("decision: error 403: Sign in with a user name and password (not Windows authentication) to reach your mailbox.");
    expect(r.stdout).toContain("rules: R-POP-4");
  });

  it("--header carries X-AnchorMailbox and NTLM; --site sets the receiving site for unknown hosts", async () => {
    const anchor = await runExplain({ ...base, url: "https://10.1.2.3/EWS/Exchange.asmx", site: "europe", header: ["X-AnchorMailbox: SMTP:jun@contoso.com"] });
    expect(anchor.decision).toMatchObject({ outcome: "proxy", receivingSite: "europe", targetSite: "asia", identity: { source: "x-anchormailbox" } });
    expect(anchor.stdout).toContain("host 10.1.2.3 unknown: default site");
    const ntlm = await runExplain({ ...base, url: "https://mail.contoso.com/ews/exchange.asmx", header: [`Authorization: NTLM ${buildNtlmAuthenticate("hans", "CONTOSO").toString("base64")}`] });
    expect(ntlm.decision).toMatchObject({ targetSite: "europe", identity: { value: "CONTOSO\\hans", source: "ntlm" } });
  });

  it("--pin and --down: a pinned OWA user moves when the pinned server is down (R-LB-2)", async () => {
    const r = await runExplain({ ...base, url: "https://mail.contoso.com/owa/", user: "alice", pin: "usa-cas01", down: ["usa-cas01"] });
    expect(r.decision).toMatchObject({ targetServer: "usa-cas02", affinity: "set" });
    expect(r.stdout).toMatch(/R-LB-2: pin to usa-cas01 cannot be kept \(down\): moved to usa-cas02/);
  });

  it("rejects a malformed URL, header and unknown site", async () => {
    expect((await runExplain({ ...base, url: "not a url" })).exitCode).toBe(2);
    expect((await runExplain({ ...base, url: "https://x/owa", header: ["no colon"] })).stderr).toContain("--header");
    expect((await runExplain({ ...base, url: "https://x/owa", site: "mars" })).stderr).toContain('--site: no ADSite "mars"');
  });
});
