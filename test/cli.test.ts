// Runs the BUILT command line (`node bin/cas-gateway.js`, after `npm run build`) as a user would.
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "cas-gateway.js");
const EXAMPLE = join(ROOT, "examples", "contoso");
const BUILT = existsSync(join(ROOT, "dist", "cli", "main.js"));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** 1-based line of the first occurrence of `needle` in `text` (after `after`, when given). */
function lineOf(text: string, needle: string, after = ""): number {
  const from = after ? text.indexOf(after) : 0;
  const at = text.indexOf(needle, from);
  if (from < 0 || at < 0) throw new Error(`"${needle}" not found`);
  return text.slice(0, at).split("\n").length;
}

describe.skipIf(!BUILT)("cas-gateway validate (built CLI; run `npm run build` first)", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "cas-cli-"));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("accepts the example organisation: exit 0 and a summary", async () => {
    const r = await cli(["validate", "--manifests", "examples/contoso", "--directory", "examples/contoso/mailboxes.csv"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^OK: 3 sites, 17 servers, \d+ virtual directories, 9 databases, 12 mailboxes; 0 warnings; topology version [0-9a-f]{16}\n$/,
    );
  });

  it("--print-topology prints one table per site", async () => {
    const r = await cli(["validate", "-m", "examples/contoso", "-d", "examples/contoso/mailboxes.csv", "--print-topology"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("site usa (internet facing; usa.contoso.com, mail.contoso.com)");
    expect(r.stdout).toContain("site asia (not internet facing; no host names)");
    expect(r.stdout).toMatch(/\n {2}usa-e2013 +2013 +CAS\+MBX +usa\.contoso\.com +ActiveSync,/);
    expect(r.stdout).toMatch(/\n {2}DB-ASIA-2016 +asia-e2016-01 +asia-e2016-01,asia-e2016-02 +2\n/);
    expect(r.stdout).toContain("front-door host names: europe.contoso.com -> europe, mail.contoso.com -> usa, usa.contoso.com -> usa");
  });

  it("reports every problem of a broken copy as file:line:column: Kind/name: field: message, exit 1", async () => {
    const dir = join(tmp, "broken");
    cpSync(EXAMPLE, dir, { recursive: true });
    const csv = join(dir, "mailboxes.csv");

    // 1. A schema error: an Exchange version that does not exist.
    const usaFile = join(dir, "site-usa.yaml");
    const usa = readFileSync(usaFile, "utf8").replace('exchangeVersion: "2007"', 'exchangeVersion: "2008"');
    writeFileSync(usaFile, usa);
    const versionLine = lineOf(usa, '"2008"');
    // 2. A dangling reference: a database whose active server does not exist.
    const dbFile = join(dir, "databases.yaml");
    const dbs = readFileSync(dbFile, "utf8").replaceAll("usa-mbx01", "usa-mbx99");
    writeFileSync(dbFile, dbs);
    const activeLine = lineOf(dbs, "activeServer: usa-mbx99");
    // 3. A YAML syntax error in a new file.
    const extra = join(dir, "zz-extra.yaml");
    writeFileSync(extra, "apiVersion: casgateway.io/v1alpha1\nkind: ADSite\nmetadata:\n  name: x\nspec:\n  hostnames: [a.contoso.com\n");
    // 4. A warning: certificate validation off.
    const eu = readFileSync(join(dir, "site-europe.yaml"), "utf8").replace(
      "  roles:\n    - ClientAccess\n  internalNLBBypassUrl: \"https://cas02",
      "  tls:\n    insecureSkipVerify: true\n  roles:\n    - ClientAccess\n  internalNLBBypassUrl: \"https://cas02",
    );
    writeFileSync(join(dir, "site-europe.yaml"), eu);
    const tlsLine = lineOf(eu, "insecureSkipVerify: true");

    const r = await cli(["validate", "--manifests", dir, "--directory", csv]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toContain(
      `${usaFile}:${versionLine}:20: ClientAccessServer/usa-e2007-cas: spec.exchangeVersion: Invalid option: expected one of "2003"|"2007"|"2010"|"2013"|"2016"|"2019"`,
    );
    expect(lines).toContain(`${dbFile}:${activeLine}:17: MailboxDatabase/db-usa-2010: spec.activeServer: server "usa-mbx99" does not exist or was not accepted`);
    expect(lines.filter((l) => l.startsWith(`${extra}:7:1: (yaml): `))).toHaveLength(1);
    expect(lines).toContain(
      `${join(dir, "site-europe.yaml")}:${tlsLine}:25: ClientAccessServer/europe-cas02: spec.tls.insecureSkipVerify: warning: upstream certificate validation is off for this server (R-GEN-3: as Exchange does, but the certificate's name, expiry and trust are not checked)`,
    );
    // The 2007 CAS left out takes its directories with it; the mailboxes of the dropped database are flagged.
    expect(lines.some((l) => l.includes("VirtualDirectory/usa-e2007-cas-owa: spec.server: ") && l.startsWith(`${usaFile}:`))).toBe(true);
    expect(lines).toContain(
      `${csv}:3:1: Mailbox/alice@contoso.com: Database: warning: database "DB-USA-2010" is not a MailboxDatabase of the organisation; requests for this mailbox will be refused`,
    );
    expect(r.stdout).toMatch(/^INVALID: \d+ errors: 3 sites, 16 servers, /);
  });

  it("a bad CSV row is an error at its line; a missing directory is an error, not a crash", async () => {
    const csv = join(tmp, "bad.csv");
    const text = readFileSync(join(EXAMPLE, "mailboxes.csv"), "utf8").replace('"DB-EUR-2013"', '""');
    writeFileSync(csv, text);
    const r = await cli(["validate", "--manifests", "examples/contoso", "--directory", csv]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${csv}:${lineOf(text, '"ines"')}:1: Database: is empty\n`);

    const gone = await cli(["validate", "--manifests", join(tmp, "nope")]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/nope: cannot read manifest directory: ENOENT/);
  });

  it("a missing --manifests flag is a usage error (exit 2, not a crash)", async () => {
    const r = await cli(["validate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--manifests");
  });
});
