// The example organisation's exports (examples/exports, what scripts/Export-CasTopology.ps1 writes)
// import into examples/contoso: the same objects, accepted by `validate`, making the same decisions.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ApiObject } from "../../crds/index.js";
import { runExplain } from "../../cli/commands/explain.js";
import { runImport } from "../../cli/commands/import.js";
import { runValidate } from "../../cli/commands/validate.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { decide } from "../../sidecar/decision/engine.js";
import { healthFromDown } from "../../model/health.js";
import type { ClientRequest, Decision } from "../../sidecar/decision/types.js";
import { CONTOSO_DIR, CONTOSO_IMPORT_ARGS, EXPORTS_DIR, exportsOf, readContoso } from "./example-exports.js";

const MAILBOXES = join(CONTOSO_DIR, "mailboxes.csv");
let tmp: string;
let out: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "cas-import-"));
  out = join(tmp, "manifests");
  const r = await runImport({ from: EXPORTS_DIR, out, ...CONTOSO_IMPORT_ARGS, hostname: [...CONTOSO_IMPORT_ARGS.hostname] });
  expect(r.exitCode).toBe(0);
  // What the exports cannot say, each said once.
  expect(r.stderr.trimEnd().split("\n")).toEqual([
    expect.stringMatching(/^warning: site usa: legacy\.usa\.contoso\.com \(an ExternalUrl of usa-e2007-cas, Exchange 2007\) is taken as a legacy namespace/),
    expect.stringMatching(/^warning: site asia: imported as not internet facing: none of its directories has an ExternalUrl/),
    "warning: Get-ADSite.xml: Default-First-Site-Name: not imported: no Exchange server of the export is in this site",
    expect.stringMatching(/^warning: ActiveSync of Exchange 2003 servers \(usa-e2003\) is not in any export; derived/),
  ]);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Every document of every .yaml file in dir, as written (no schema defaults applied). */
async function documentsIn(dir: string): Promise<Record<string, unknown>[]> {
  const list: Record<string, unknown>[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".yaml")).sort()) {
    for (const d of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const js = d.toJS() as Record<string, unknown> | null;
      if (js) list.push(js);
    }
  }
  return list;
}

/** Objects by kind and name, exactly as written: apiVersion, metadata and every spec field. */
function byIdentity(docs: readonly Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  const m = new Map<string, Record<string, unknown>>();
  for (const d of docs) {
    const o = ApiObject.parse(d); // each one is a valid object
    const k = `${o.kind}/${o.metadata.name}`;
    expect(m.has(k), `${k} twice`).toBe(false);
    m.set(k, d);
  }
  return m;
}

describe("examples/exports", () => {
  it("are what the generator makes of examples/contoso (run `npx tsx test/import/example-exports.ts` after changing it)", async () => {
    const want = exportsOf(await readContoso());
    const have = (await readdir(EXPORTS_DIR)).filter((n) => n.endsWith(".xml")).sort();
    expect(have).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect((await readFile(join(EXPORTS_DIR, name))).equals(bytes), name).toBe(true);
  });

  it("import into exactly examples/contoso: every site, server, virtual directory and database, field for field", async () => {
    const imported = byIdentity(await documentsIn(out));
    const contoso = byIdentity(await documentsIn(CONTOSO_DIR));
    expect([...imported.keys()].sort()).toEqual([...contoso.keys()].sort());
    // Strict: a field written on one side and left to its default on the other is a difference.
    for (const [k, v] of contoso) expect(imported.get(k), k).toStrictEqual(v);
    expect(imported.size).toBe(3 + 17 + 115 + 9);
    // Not a comparison that holds by accident: the OWA settings of issue 22 are there on both sides.
    expect(contoso.get("VirtualDirectory/asia-cas01-owa")?.spec).toMatchObject({ legacyRedirectType: "Silent" });
    expect(imported.get("MailboxDatabase/first-storage-group-mailbox-store-e2003")?.spec).toMatchObject({ databaseName: "First Storage Group\\Mailbox Store (E2003)" });
  });

  it("import to the same bytes every time, one file per site plus databases.yaml, each object with its source", async () => {
    const again = join(tmp, "again");
    const r = await runImport({ from: EXPORTS_DIR, out: again, ...CONTOSO_IMPORT_ARGS, hostname: [...CONTOSO_IMPORT_ARGS.hostname] });
    expect(r.exitCode).toBe(0);
    const files = (await readdir(out)).sort();
    expect(files).toEqual(["databases.yaml", "site-asia.yaml", "site-europe.yaml", "site-usa.yaml"]);
    for (const f of files) {
      const a = await readFile(join(out, f), "utf8");
      expect(await readFile(join(again, f), "utf8")).toBe(a);
      const docs = a.split(/^---$/m);
      for (const d of docs) expect(d).toMatch(/^# From (Get-[A-Za-z]+\.xml: |derived from |--exchange2003-)/m);
    }
    expect(await readFile(join(out, "site-usa.yaml"), "utf8")).toContain("# From Get-OwaVirtualDirectory.xml: USA-CAS01\\owa (Default Web Site)\n");
  });

  it("pass validate with the mailbox export, with no warning the hand-written organisation does not have", async () => {
    const mine = await runValidate({ manifests: out, directory: MAILBOXES });
    expect(mine.problems.filter((p) => !p.includes("warning:"))).toEqual([]);
    expect(mine.exitCode).toBe(0);
    const theirs = await runValidate({ manifests: CONTOSO_DIR, directory: MAILBOXES });
    expect(mine.report[0].replace(/topology version \S+/, "")).toBe(theirs.report[0].replace(/topology version \S+/, ""));
    const strip = (ps: readonly string[]) => ps.map((p) => p.replace(/^[^:]*:\d+:\d+: /, "")).sort();
    expect(strip(mine.problems)).toEqual(strip(theirs.problems));
  });

  it("make the same decisions as the hand-written organisation (explain)", async () => {
    const cases = [
      { url: "https://mail.contoso.com/owa/", user: "frank" },
      { url: "https://europe.contoso.com/owa/", user: "alice" },
      { url: "https://usa.contoso.com/owa/", user: "dave" },
      { url: "https://usa.contoso.com/owa/", user: "carol" },
      { url: "https://europe.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=kenji&DeviceId=1&DeviceType=PocketPC", user: "kenji" },
      { url: "imap://mail.contoso.com", user: "jun" },
    ];
    for (const c of cases) {
      const a = await runExplain({ manifests: out, directory: MAILBOXES, ...c });
      const b = await runExplain({ manifests: CONTOSO_DIR, directory: MAILBOXES, ...c });
      expect(a.exitCode, c.url).toBe(0);
      expect(a.stdout, `${c.user} ${c.url}`).toBe(b.stdout);
    }
  });

  it("make the same decisions for every user, service and front door, with servers up or down", async () => {
    const a = await loadOrganisation(out, MAILBOXES);
    const b = await loadOrganisation(CONTOSO_DIR, MAILBOXES);
    expect(a.errors).toEqual([]);
    const users = ["alice", "carol", "dave", "erin", "frank", "hans", "ines", "jun", "kenji", "lina"];
    const hosts = ["mail.contoso.com", "usa.contoso.com", "europe.contoso.com"];
    const paths = ["/owa/", "/ecp/", "/EWS/Exchange.asmx", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=d&DeviceType=t", "/OAB/x/oab.xml", "/Autodiscover/Autodiscover.xml", "/rpc/rpcproxy.dll", "/mapi/emsmdb/", "/PowerShell/", "/public/", "/exchange/"];
    const downs: string[][] = [[], ["usa-cas01", "europe-cas01"], ["asia-e2016-01"]];
    const same = (d: Decision) => ({ ...d, trace: undefined });
    let n = 0;
    const outcomes = new Set<string>();
    for (const down of downs) {
      for (const user of users) {
        for (const host of hosts) {
          const reqs: ClientRequest[] = paths.map((p) => ({
            method: "GET",
            host,
            path: p,
            scheme: "https",
            headers: { host, authorization: `Basic ${Buffer.from(`${user}:x`).toString("base64")}` },
          }));
          for (const proto of ["Pop3", "Imap4"] as const) reqs.push({ method: "LOGIN", host, path: "", scheme: "https", headers: {}, mail: { protocol: proto, user, mechanism: "PLAIN" } });
          for (const req of reqs) {
            const da = decide(req, a.topology, a.directory!, healthFromDown(down));
            const db = decide(req, b.topology, b.directory!, healthFromDown(down));
            expect(same(da), `${user} ${host}${req.path} ${req.mail?.protocol ?? ""} down ${down.join(",")}`).toEqual(same(db));
            outcomes.add(da.outcome === "redirect" ? `redirect ${da.kind}` : da.outcome);
            n++;
          }
        }
      }
    }
    expect(n).toBe(3 * 10 * 3 * 13);
    // The matrix reaches every kind of answer, not one error everywhere.
    expect([...outcomes].sort()).toEqual(expect.arrayContaining(["error", "local", "proxy", "redirect eas451", "redirect manual", "redirect silent"]));
  });
});
