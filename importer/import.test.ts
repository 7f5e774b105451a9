// Error paths and options of `cas-gateway import`, on copies of examples/exports with one thing
// changed each: every error names the file and the object, and nothing is written.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatProblem, importExports, importToDirectory, type ImportOptions } from "./index.js";

const EXPORTS = join(import.meta.dirname, "..", "examples", "exports");
const CONTOSO_OPTS: ImportOptions = {
  hostnames: [["usa", "mail.contoso.com"]],
  exchange2003Mail: { Pop3: { port: 995, encryption: "Ssl" }, Imap4: { port: 993, encryption: "Ssl" } },
};
let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cas-import-unit-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A copy of the example exports with `edit` applied to one file (text in, text out). */
async function exportsWith(file?: string, edit?: (text: string) => string): Promise<string> {
  const dir = join(root, `from-${n++}`);
  await cp(EXPORTS, dir, { recursive: true });
  if (file && edit) {
    const p = join(dir, file);
    const text = (await readFile(p)).toString("utf8");
    const changed = edit(text);
    expect(changed, `the edit of ${file} changed nothing`).not.toBe(text);
    await writeFile(p, changed);
  }
  return dir;
}

/** Replace the first match only. */
const once = (re: RegExp, to: string) => (t: string) => t.replace(re, to);

async function problems(from: string, opts: ImportOptions = CONTOSO_OPTS): Promise<{ errors: string[]; warnings: string[] }> {
  const r = await importExports(from, opts);
  return { errors: r.errors.map(formatProblem), warnings: r.warnings.map(formatProblem) };
}

describe("cas-gateway import: errors name the file and the object", () => {
  it("a missing required property", async () => {
    const from = await exportsWith("Get-EcpVirtualDirectory.xml", once(/\s*<URI N="InternalUrl">[^<]*<\/URI>/, ""));
    expect((await problems(from)).errors).toEqual([
      "Get-EcpVirtualDirectory.xml: ASIA-CAS01\\ecp (Default Web Site) (object 1): missing property InternalUrl (export the cmdlet's whole output, without Select-Object)",
    ]);
  });

  it("a malformed file", async () => {
    const from = await exportsWith("Get-OabVirtualDirectory.xml", (t) => t.slice(0, 2000));
    const { errors } = await problems(from);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^Get-OabVirtualDirectory\.xml: line \d+, column \d+: not well-formed XML/);
  });

  it("an object that refers to a server that is not exported", async () => {
    const from = await exportsWith("Get-PopSettings.xml", once(/<S N="Server">ASIA-CAS01<\/S>/, '<S N="Server">ASIA-CAS09</S>'));
    expect((await problems(from)).errors).toEqual([
      'Get-PopSettings.xml: ASIA-CAS01\\1 (object 1): refers to server "ASIA-CAS09", which is not in Get-ExchangeServer.xml',
    ]);
  });

  it("a database copy on a server that is not exported", async () => {
    const from = await exportsWith("Get-MailboxDatabase.xml", once(/<S>ASIA-E2016-02<\/S>/, "<S>ASIA-E2016-03</S>"));
    expect((await problems(from)).errors).toEqual([
      'Get-MailboxDatabase.xml: DB-ASIA-2016 (object 2): refers to database copy server "ASIA-E2016-03", which is not in Get-ExchangeServer.xml',
    ]);
  });

  it("values Exchange does not write: a redirect type, a connection setting, a URL, a version", async () => {
    const owa = await exportsWith("Get-OwaVirtualDirectory.xml", once(/(<Obj N="CrossSiteRedirectType"[^>]*>(?:(?!<\/Obj>)[\s\S])*?<ToString>)Silent/, "$1Sideways"));
    expect((await problems(owa)).errors).toEqual([
      expect.stringMatching(/^Get-OwaVirtualDirectory\.xml: USA-CAS01\\owa \(Default Web Site\) \(object \d+\): CrossSiteRedirectType "Sideways" is neither Manual nor Silent$/),
    ]);
    const pop = await exportsWith("Get-PopSettings.xml", once(/<S>cas01\.asia\.contoso\.com:995:SSL<\/S>/, "<S>cas01.asia.contoso.com:pop:SSL</S>"));
    expect((await problems(pop)).errors).toEqual([
      'Get-PopSettings.xml: ASIA-CAS01\\1 (object 1): InternalConnectionSettings entry "cas01.asia.contoso.com:pop:SSL" is not host:port:SSL|TLS',
    ]);
    const url = await exportsWith("Get-WebServicesVirtualDirectory.xml", once(/<URI N="InternalUrl">https:\/\/cas01\.asia/, '<URI N="InternalUrl">ftp://cas01.asia'));
    expect((await problems(url)).errors).toEqual([
      expect.stringMatching(/^Get-WebServicesVirtualDirectory\.xml: ASIA-CAS01\\EWS \(Default Web Site\) \(object 1\): InternalUrl "ftp:\/\/cas01\.asia\.contoso\.com\/EWS\/Exchange\.asmx" is not an absolute http:\/\/ or https:\/\/ URL$/),
    ]);
  });

  it("a server with no site says how to name it, and --server-site does", async () => {
    const from = await exportsWith("Get-ExchangeServer.xml", once(/<S N="Site">contoso\.local\/Configuration\/Sites\/USA<\/S>(?=[\s\S]*?USA-E2003)/, '<Nil N="Site" />'));
    // The first USA server in file order is USA-CAS01, so the hint names it.
    const { errors } = await problems(from);
    expect(errors).toEqual([expect.stringMatching(/^Get-ExchangeServer\.xml: USA-CAS01 \(object \d+\): has no Site \(Exchange 2010 servers may not say\); name it with --server-site USA-CAS01=SITE$/)]);
    expect((await problems(from, { ...CONTOSO_OPTS, serverSites: [["usa-cas01", "USA"]] })).errors).toEqual([]);
    expect((await problems(from, { ...CONTOSO_OPTS, serverSites: [["USA-CAS01", "Mars"]] })).errors).toEqual([
      expect.stringMatching(/^Get-ExchangeServer\.xml: USA-CAS01 \(object \d+\): refers to site "Mars", which is not in Get-ADSite\.xml$/),
    ]);
  });

  it("--hostname for a site that is not imported, or a host name given to two sites", async () => {
    const from = await exportsWith();
    expect((await problems(from, { ...CONTOSO_OPTS, hostnames: [["mars", "mail.contoso.com"]] })).errors).toEqual([
      "--hostname: mars=mail.contoso.com: no site mars among the imported sites (asia, default-first-site-name, europe, usa)",
    ]);
    expect((await problems(from, { ...CONTOSO_OPTS, hostnames: [["usa", "mail.contoso.com"], ["Europe", "mail.contoso.com"]] })).errors).toEqual([
      "--hostname: Europe=mail.contoso.com: mail.contoso.com is already given to site usa; a host name belongs to one site",
    ]);
  });

  it("two servers whose Kubernetes names collide", async () => {
    const from = await exportsWith("Get-ExchangeServer.xml", once(/<S N="Name">ASIA-MBX01<\/S>/, '<S N="Name">ASIA_CAS01</S>'));
    const { errors } = await problems(from);
    expect(errors[0]).toMatch(/^Get-ExchangeServer\.xml: ASIA-MBX01 \(object \d+\): servers ASIA-CAS01 and ASIA_CAS01 both become asia-cas01$/);
  });

  it("nothing is written when any file fails: the last import stays as it was", async () => {
    const out = join(root, "out-kept");
    const good = await importToDirectory(await exportsWith(), out, CONTOSO_OPTS);
    expect(good.errors).toEqual([]);
    const before = new Map<string, string>();
    for (const f of await readdir(out)) before.set(f, await readFile(join(out, f), "utf8"));
    const bad = await importToDirectory(await exportsWith("Get-ADSite.xml", (t) => t.replace("</Objs>", "")), out, CONTOSO_OPTS);
    expect(bad.errors).toHaveLength(1);
    expect(bad.files.size).toBe(0);
    expect((await readdir(out)).sort()).toEqual([...before.keys()].sort());
    for (const [f, text] of before) expect(await readFile(join(out, f), "utf8")).toBe(text);
    expect((await readdir(root)).filter((d) => d.includes(".import-") || d.includes(".old-"))).toEqual([]);
  });

  it("an --out holding files it did not write is not replaced", async () => {
    const out = join(root, "out-foreign");
    await mkdir(out);
    await writeFile(join(out, "my-notes.yaml"), "# mine\n");
    await expect(importToDirectory(await exportsWith(), out, CONTOSO_OPTS)).rejects.toThrow(/not replaced, it holds files cas-gateway import did not write \(my-notes\.yaml\)/);
    expect(await readdir(out)).toEqual(["my-notes.yaml"]);
  });

  it("a directory without any export is an error", async () => {
    const empty = join(root, "empty");
    await mkdir(empty);
    expect((await problems(empty)).errors).toEqual([`${empty}: no export of a cmdlet cas-gateway import reads (Get-ExchangeServer.xml, Get-OwaVirtualDirectory.xml, ...)`]);
  });
});

describe("cas-gateway import: what is not an error", () => {
  it("files saved in Export-Clixml's default UTF-16, or named otherwise, import the same", async () => {
    const base = await importExports(await exportsWith(), CONTOSO_OPTS);
    const from = await exportsWith();
    const owa = await readFile(join(from, "Get-OwaVirtualDirectory.xml"), "utf8");
    await rm(join(from, "Get-OwaVirtualDirectory.xml"));
    await writeFile(join(from, "owa-2024-05.xml"), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(owa.replace(/^\uFEFF/, ""), "utf16le")]));
    const r = await importExports(from, CONTOSO_OPTS);
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => o.object)).toEqual(base.objects.map((o) => o.object));
  });

  it("objects from a local (Exchange 2007) shell: full type names, references as objects with ToString", async () => {
    const from = await exportsWith("Get-ExchangeServer.xml", (t) =>
      t
        .replaceAll("<T>Deserialized.", "<T>")
        .replace(
          /<S N="Site">([^<]*)<\/S>/g,
          (_, site: string) => `<Obj N="Site" RefId="9${site.length}"><TN RefId="90"><T>Microsoft.Exchange.Data.Directory.ADObjectId</T><T>System.Object</T></TN><ToString>${site}</ToString><Props><S N="Name">${site.split("/").pop()}</S></Props></Obj>`,
        ),
    );
    const base = await importExports(await exportsWith(), CONTOSO_OPTS);
    const r = await importExports(from, CONTOSO_OPTS);
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => o.object)).toEqual(base.objects.map((o) => o.object));
  });

  it("an unknown property is ignored", async () => {
    const from = await exportsWith("Get-OwaVirtualDirectory.xml", once(/<Props>/, '<Props>\r\n      <S N="SomethingExchange2030Adds">x</S>'));
    expect(await problems(from)).toEqual(await problems(await exportsWith()));
  });

  it("OWA's LegacyRedirectType and RedirectToOptimalOWAServer become legacyRedirectType and redirectToOptimalOwaServer", async () => {
    const owaOf = async (from: string, name: string) => {
      const r = await importExports(from, CONTOSO_OPTS);
      expect(r.errors.map(formatProblem)).toEqual([]);
      return r.objects.find((o) => o.object.kind === "VirtualDirectory" && o.object.metadata.name === name)?.object.spec as Record<string, unknown>;
    };
    // As exported for the example: Silent on the 2010 directories, $null (absent) on the others, $true everywhere.
    const base = await owaOf(await exportsWith(), "asia-cas01-owa");
    expect(base.legacyRedirectType).toBe("Silent");
    expect("redirectToOptimalOwaServer" in base).toBe(false);
    expect("legacyRedirectType" in (await owaOf(await exportsWith(), "asia-e2016-01-owa"))).toBe(false);
    // Manual and $false on ASIA-CAS01 (the file's first object).
    const edited = await exportsWith("Get-OwaVirtualDirectory.xml", (t) =>
      once(/(<Obj N="LegacyRedirectType"[^>]*>(?:(?!<\/Obj>)[\s\S])*?<ToString>)Silent/, "$1Manual")(t).replace('<B N="RedirectToOptimalOWAServer">true</B>', '<B N="RedirectToOptimalOWAServer">false</B>'),
    );
    expect(await owaOf(edited, "asia-cas01-owa")).toMatchObject({ legacyRedirectType: "Manual", redirectToOptimalOwaServer: false });
    // Not modelled any more, so no warning about them.
    expect((await problems(edited)).warnings.filter((w) => /LegacyRedirectType|RedirectToOptimalOWAServer/.test(w))).toEqual([]);
    // A value Exchange does not write is an error naming the object.
    const bad = await exportsWith("Get-OwaVirtualDirectory.xml", once(/(<Obj N="LegacyRedirectType"[^>]*>(?:(?!<\/Obj>)[\s\S])*?<ToString>)Silent/, "$1Sideways"));
    expect((await problems(bad)).errors).toEqual([
      expect.stringMatching(/^Get-OwaVirtualDirectory\.xml: ASIA-CAS01\\owa \(Default Web Site\) \(object 1\): LegacyRedirectType "Sideways" is neither Silent nor Manual$/),
    ]);
    const badBool = await exportsWith("Get-OwaVirtualDirectory.xml", once(/<B N="RedirectToOptimalOWAServer">true<\/B>/, '<S N="RedirectToOptimalOWAServer">sometimes</S>'));
    expect((await problems(badBool)).errors).toEqual([
      expect.stringMatching(/^Get-OwaVirtualDirectory\.xml: ASIA-CAS01\\owa \(Default Web Site\) \(object 1\): RedirectToOptimalOWAServer "sometimes" is neither \$true nor \$false$/),
    ]);
  });

  it("a missing file imports what is there (no MAPI directories)", async () => {
    const from = await exportsWith();
    await rm(join(from, "Get-MapiVirtualDirectory.xml"));
    const r = await importExports(from, CONTOSO_OPTS);
    expect(r.errors).toEqual([]);
    expect(r.objects.filter((o) => o.object.kind === "VirtualDirectory")).toHaveLength(115 - 4);
  });

  it("authentication methods cas-gateway does not model are left out, with one warning each", async () => {
    const from = await exportsWith("Get-WebServicesVirtualDirectory.xml", (t) => t.replace(/<LST>\s*<S>Ntlm<\/S>/g, "<LST><S>WSSecurity</S><S>Ntlm</S>"));
    const { errors, warnings } = await problems(from);
    expect(errors).toEqual([]);
    expect(warnings.filter((w) => w.includes("WSSecurity"))).toEqual([expect.stringMatching(/^authentication method WSSecurity is not one cas-gateway routes on; left out on asia-cas01-ews, .* and \d+ more$/)]);
  });

  it("Exchange 2003 POP3/IMAP4 without the options: not imported, and the warning says which option", async () => {
    const { errors, warnings } = await problems(await exportsWith(), { hostnames: CONTOSO_OPTS.hostnames });
    expect(errors).toEqual([]);
    expect(warnings).toContain("Pop3 of Exchange 2003 servers (usa-e2003) is not in any export (the shell does not manage Exchange 2003 protocols); not imported, give it with --exchange2003-pop3 995:SSL");
  });

  it("--namespace puts every object in it; a name lower-casing cannot carry is kept in an annotation", async () => {
    const from = await exportsWith("Get-ADSite.xml", (t) => t.replaceAll(">Europe<", ">Europe West<"));
    const ex = await exportsWith();
    await cp(join(from, "Get-ADSite.xml"), join(ex, "Get-ADSite.xml"));
    const text = (await readFile(join(ex, "Get-ExchangeServer.xml"), "utf8")).replaceAll("Sites/Europe<", "Sites/Europe West<");
    await writeFile(join(ex, "Get-ExchangeServer.xml"), text);
    const r = await importExports(ex, { ...CONTOSO_OPTS, namespace: "exchange" });
    expect(r.errors).toEqual([]);
    expect(r.objects.every((o) => o.object.metadata.namespace === "exchange")).toBe(true);
    const site = r.objects.find((o) => o.object.kind === "ADSite" && o.object.metadata.name === "europe-west");
    expect(site?.object.metadata.annotations).toEqual({ "casgateway.io/exchange-name": "Europe West" });
    expect(r.files.get("site-europe-west.yaml")).toContain("site: europe-west");
  });
});
