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

async function objectsIn(dir: string): Promise<ApiObject[]> {
  const list: ApiObject[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(".yaml")).sort()) {
    for (const d of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const js = d.toJS() as unknown;
      if (js) list.push(ApiObject.parse(js));
    }
  }
  return list;
}

/**
 * Objects by kind and identity. Two things of the hand-written organisation are not Exchange data:
 * an ADSite's free-text description, and a database's Kubernetes name (the importer derives it
 * from the Exchange name: DB-EUR-2010 → db-eur-2010, where the example says db-europe-2010), so
 * databases are matched by their Exchange name, which is what mailboxes refer to.
 */
function comparable(objects: readonly ApiObject[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const o of objects) {
    if (o.kind === "ADSite") {
      const { description: _d, ...spec } = o.spec;
      m.set(`ADSite/${o.metadata.name}`, spec);
    } else if (o.kind === "MailboxDatabase") {
      const { databaseName, ...spec } = o.spec;
      m.set(`MailboxDatabase/${(databaseName ?? o.metadata.name).toLowerCase()}`, spec);
    } else m.set(`${o.kind}/${o.metadata.name}`, o.spec);
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

  it("import into examples/contoso: every site, server, virtual directory and database", async () => {
    const imported = comparable(await objectsIn(out));
    const contoso = comparable(await readContoso());
    expect([...imported.keys()].sort()).toEqual([...contoso.keys()].sort());
    for (const [k, v] of contoso) expect(imported.get(k), k).toEqual(v);
    expect(imported.size).toBe(3 + 17 + 115 + 9);
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
    const strip = (ps: readonly string[]) => ps.map((p) => p.replace(/^[^:]*:\d+:\d+: /, "").replace(/db-[a-z0-9-]+/g, "DB")).sort();
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
      expect(a.stdout, `${c.user} ${c.url}`).toBe(b.stdout.replace(/db-europe-/g, "db-eur-").replace(/db-usa-2003/g, "first-storage-group-mailbox-store-e2003"));
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
