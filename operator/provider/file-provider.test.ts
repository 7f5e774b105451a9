import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileProvider, type FileProviderState } from "./file-provider.js";
import { formatError } from "./manifests.js";
import type { ProviderSnapshot } from "./types.js";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "contoso");

let root: string;
let dir: string;
let csv: string;
let provider: FileProvider | undefined;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "cas-fileprovider-"));
  dir = join(root, "org");
  cpSync(EXAMPLE, dir, { recursive: true });
  csv = join(root, "mailboxes.csv");
  renameSync(join(dir, "mailboxes.csv"), csv);
});
afterEach(async () => {
  await provider?.stop();
  provider = undefined;
  rmSync(root, { recursive: true, force: true });
});

/** Resolves with the first published state that matches (bounded). */
function waitFor(p: FileProvider, pred: (s: FileProviderState) => boolean, what: string, ms = 20_000): Promise<FileProviderState> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for: ${what}; errors now: ${p.errors().map(formatError).join(" | ")}`));
    }, ms);
    const off = p.subscribe((s) => {
      if (pred(s)) {
        clearTimeout(t);
        off();
        resolve(s);
      }
    });
  });
}

async function started(extra: Partial<ConstructorParameters<typeof FileProvider>[0]> = {}) {
  const snapshots: ProviderSnapshot[] = [];
  provider = new FileProvider({ manifestDir: dir, directoryFile: csv, debounceMs: 50, rescanMs: 300, ...extra });
  await provider.start((s) => snapshots.push(s));
  return { p: provider, snapshots };
}

const SITE = (name: string, host: string, extra = "") => `apiVersion: casgateway.io/v1alpha1
kind: ADSite
metadata:
  name: ${name}
spec:
  hostnames:
    - ${host}
${extra}`;

describe("FileProvider", () => {
  it("publishes the first snapshot: topology and directory", async () => {
    const { p, snapshots } = await started();
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0].errors).toEqual([]);
    expect(p.topology().sites.size).toBe(3);
    expect(p.topology().servers.size).toBe(17);
    expect(p.directory()?.size).toBe(12);
    expect(await p.lookup("ALICE@contoso.com")).toMatchObject({ status: "found", mailbox: { database: "DB-USA-2010" } });
  });

  it("edit → new topology; broken edit → errors with exact line, old topology kept; fix → recovers", async () => {
    const { p } = await started();
    const v0 = p.topology().version;

    // Edit: a new site.
    const extra = join(dir, "site-africa.yaml");
    let next = waitFor(p, (s) => s.topology.sites.has("africa"), "site africa");
    writeFileSync(extra, SITE("africa", "africa.contoso.com"));
    const s1 = await next;
    expect(s1.changed.objects).toBe(true);
    expect(s1.snapshot.errors).toEqual([]);
    const v1 = s1.topology.version;
    expect(v1).not.toBe(v0);

    // YAML syntax error: an unterminated flow sequence on line 7.
    next = waitFor(p, (s) => s.snapshot.errors.length > 0, "yaml error");
    writeFileSync(extra, SITE("africa", "[africa.contoso.com", "  description: broken\n"));
    const s2 = await next;
    expect(s2.changed.objects).toBe(false);
    expect(s2.topology.version).toBe(v1);
    // The unterminated "[" of line 7 is detected where the next key starts: line 8, column 3.
    expect(s2.snapshot.errors.map(formatError)).toEqual([
      `${extra}:8:3: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]);

    // Schema violation: spec.internetFacing is not a boolean, line 8 column 19.
    next = waitFor(p, (s) => s.snapshot.errors.some((e) => e.field === "spec.internetFacing"), "schema error");
    writeFileSync(extra, SITE("africa", "africa.contoso.com", "  internetFacing: maybe\n"));
    const s3 = await next;
    expect(s3.snapshot.errors.map(formatError)).toEqual([
      `${extra}:8:19: ADSite/africa: spec.internetFacing: Invalid input: expected boolean, received string`,
    ]);
    expect(s3.topology.version).toBe(v1);
    expect(s3.snapshot.objects.some((o) => o.metadata.name === "africa")).toBe(true);

    // A misspelt field (kubectl's strict validation would refuse it too): an error, never dropped silently.
    next = waitFor(p, (s) => s.snapshot.errors.some((e) => e.field === "spec.internetfacing"), "unknown field");
    writeFileSync(extra, SITE("africa", "africa.contoso.com", "  internetfacing: false\n"));
    const s3b = await next;
    expect(s3b.snapshot.errors.map(formatError)).toEqual([
      `${extra}:8:3: ADSite/africa: spec.internetfacing: unknown field "internetfacing"; did you mean internetFacing?`,
    ]);
    expect(s3b.topology.version).toBe(v1);

    // Dangling reference in another file: the whole change is refused (site africa stays as it was).
    const cas = join(dir, "cas-africa.yaml");
    writeFileSync(extra, SITE("africa", "africa.contoso.com"));
    await waitFor(p, (s) => s.snapshot.errors.length === 0, "fixed site");
    next = waitFor(p, (s) => s.snapshot.errors.some((e) => e.field === "spec.site"), "dangling site");
    writeFileSync(
      cas,
      `# a server in a site that does not exist
apiVersion: casgateway.io/v1alpha1
kind: ClientAccessServer
metadata:
  name: africa-cas01
spec:
  site: afrika
  fqdn: cas01.africa.contoso.com
  exchangeVersion: "2016"
  roles: [ClientAccess, Mailbox]
`,
    );
    const s4 = await next;
    expect(s4.snapshot.errors.map(formatError)).toEqual([
      `${cas}:7:9: ClientAccessServer/africa-cas01: spec.site: ADSite "afrika" does not exist`,
    ]);
    expect(s4.topology.servers.has("africa-cas01")).toBe(false);
    expect(s4.topology.version).toBe(v1);

    // Fix: recovers, and the server is in.
    next = waitFor(p, (s) => s.snapshot.errors.length === 0 && s.topology.servers.has("africa-cas01"), "recovered");
    writeFileSync(cas, readFileSync(cas, "utf8").replace("site: afrika", "site: africa"));
    const s5 = await next;
    expect(s5.topology.servers.get("africa-cas01")?.site).toBe("africa");
    expect(p.errors()).toEqual([]);
  });

  it("mailbox CSV: a bad row is reported with file:line and the last good directory stays; fix recovers", async () => {
    const { p } = await started();
    const good = readFileSync(csv, "utf8");
    const lines = good.split("\n");
    // Line 5 of the file (carol) gets a bad GUID.
    lines[4] = lines[4].replace("a9a01980-10a6-073d-b964-34f6cc5f22a8", "not-a-guid");
    let next = waitFor(p, (s) => s.snapshot.errors.length > 0, "csv error");
    writeFileSync(csv, lines.join("\n"));
    const s1 = await next;
    expect(s1.snapshot.errors.map(formatError)).toEqual([`${csv}:5:1: ExchangeGuid: "not-a-guid" is not a GUID`]);
    expect(s1.changed.directory).toBe(false);
    expect(await p.lookup("carol@contoso.com")).toMatchObject({ status: "found" });

    next = waitFor(p, (s) => s.snapshot.errors.length === 0 && s.changed.directory, "csv fixed");
    const eol = good.includes("\r\n") ? "\r\n" : "\n";
    writeFileSync(csv, `${good.trimEnd()}${eol}"zoe","Zoe Zhu","zoe@contoso.com","zoe@contoso.com","zoe","DB-ASIA-2016","","SMTP:zoe@contoso.com"${eol}`);
    const s2 = await next;
    expect(s2.directory?.size).toBe(13);
    expect(await p.lookup("zoe")).toMatchObject({ status: "found", mailbox: { primarySmtpAddress: "zoe@contoso.com" } });
  });

  it("never crashes: deleted directory, binary garbage, unreadable CSV; recovers when they come back", async () => {
    const { p } = await started();
    const v0 = p.topology().version;

    let next = waitFor(p, (s) => s.snapshot.errors.some((e) => e.field === "(file)"), "binary file");
    writeFileSync(join(dir, "garbage.yaml"), Buffer.from([0x00, 0xff, 0xfe, 0x13, 0x37, 0x00, 0x0a, 0x7b, 0x5b]));
    const s1 = await next;
    expect(s1.snapshot.errors[0]).toMatchObject({ file: join(dir, "garbage.yaml"), line: 1, field: "(file)" });
    expect(s1.topology.version).toBe(v0);
    rmSync(join(dir, "garbage.yaml"));
    await waitFor(p, (s) => s.snapshot.errors.length === 0, "garbage removed");

    const saved = join(root, "saved");
    next = waitFor(p, (s) => s.snapshot.errors.some((e) => e.field === "(directory)"), "directory gone");
    renameSync(dir, saved);
    const s2 = await next;
    expect(s2.topology.version).toBe(v0);
    expect(s2.snapshot.objects.length).toBeGreaterThan(100);

    rmSync(csv);
    await waitFor(p, (s) => s.snapshot.errors.some((e) => e.file === csv), "csv gone");
    expect(await p.lookup("bob@contoso.com")).toMatchObject({ status: "found" });

    next = waitFor(p, (s) => s.snapshot.errors.length === 0, "back");
    renameSync(saved, dir);
    cpSync(join(EXAMPLE, "mailboxes.csv"), csv);
    const s3 = await next;
    expect(s3.topology.version).toBe(v0);
  });

  it("first load with a bad file: the valid part is in force, errors are reported", async () => {
    writeFileSync(join(dir, "bad.yaml"), SITE("broken", "broken.contoso.com", "  internetFacing: 3\n"));
    writeFileSync(
      join(dir, "dangling.yaml"),
      "apiVersion: casgateway.io/v1alpha1\nkind: VirtualDirectory\nmetadata:\n  name: x-owa\nspec:\n  server: nosuch\n  service: Owa\n  internalUrl: https://x.contoso.com/owa\n",
    );
    const { p, snapshots } = await started();
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0].errors.map(formatError)).toEqual([
      `${join(dir, "bad.yaml")}:8:19: ADSite/broken: spec.internetFacing: Invalid input: expected boolean, received number`,
      `${join(dir, "dangling.yaml")}:6:11: VirtualDirectory/x-owa: spec.server: ClientAccessServer "nosuch" does not exist or was not accepted`,
    ]);
    expect(p.topology().sites.size).toBe(3);
    expect(p.topology().servers.size).toBe(17);
  });

  it("a missing directory at start gives an empty configuration and an error, then picks the directory up", async () => {
    rmSync(dir, { recursive: true });
    const { p, snapshots } = await started();
    expect(snapshots[0].objects).toEqual([]);
    expect(snapshots[0].errors[0]).toMatchObject({ file: dir, field: "(directory)" });
    const next = waitFor(p, (s) => s.topology.sites.size === 3, "directory appears");
    cpSync(EXAMPLE, dir, { recursive: true });
    await next;
    expect(p.errors()).toEqual([]);
  });

  it("debounces a burst of writes into few publications", async () => {
    const { p, snapshots } = await started({ debounceMs: 400, rescanMs: 0 });
    const f = join(dir, "burst.yaml");
    const next = waitFor(p, (s) => s.topology.sites.get("burst")?.description === "v19", "last write");
    for (let i = 0; i < 20; i++) writeFileSync(f, SITE("burst", "burst.contoso.com", `  description: v${i}\n`));
    await next;
    expect(snapshots.length).toBeLessThanOrEqual(3);
  });
});
