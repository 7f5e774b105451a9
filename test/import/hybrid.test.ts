// R-HYB-1 (docs/rules.md) in `cas-gateway import`: Get-OrganizationRelationship's relationship with
// Exchange Online becomes an OrganizationRelationship in hybrid.yaml (its domains, TargetOwaURL,
// TargetAutodiscoverEpr, Enabled; Exchange Online's ActiveSync URL, said in a warning); a
// relationship with another on-premises organisation is left out with a warning.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatProblem, importToDirectory } from "../../importer/index.js";
import { B, MVP, Nil, Obj, S, URI, writeClixml } from "./clixml-writer.js";

const ROOT = join(import.meta.dirname, "..", "..");
const TYPES = ["Microsoft.Exchange.Data.Directory.SystemConfiguration.OrganizationRelationship", "Microsoft.Exchange.Data.Directory.ADConfigurationObject", "System.Object"];
const rel = (name: string, domains: string[], owa: string | null, epr: string | null, enabled: boolean) =>
  Obj(TYPES, name, [
    ["Name", S(name)],
    ["Identity", S(name)],
    ["DomainNames", MVP("Microsoft.Exchange.Data.SmtpDomain", domains)],
    ["TargetOwaURL", owa ? URI(owa) : Nil],
    ["TargetAutodiscoverEpr", epr ? URI(epr) : Nil],
    ["Enabled", B(enabled)],
  ]);

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "cas-import-hybrid-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("import: Get-OrganizationRelationship (R-HYB-1)", () => {
  it("R-HYB-1: the relationship with Exchange Online becomes hybrid.yaml; others are left out with a warning", async () => {
    const from = join(root, "exports");
    await cp(join(ROOT, "examples", "exports"), from, { recursive: true });
    await writeFile(
      join(from, "Get-OrganizationRelationship.xml"),
      writeClixml([
        rel("O365 to On-premises - 1234", ["contoso.mail.onmicrosoft.com", "contoso.onmicrosoft.com"], "https://outlook.office.com/mail", "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc/WSSecurity", true),
        rel("Fabrikam", ["fabrikam.com"], null, null, true),
        rel("Tailspin Online", ["tailspin.mail.onmicrosoft.com"], null, null, false),
      ]),
    );
    const out = join(root, "manifests");
    const r = await importToDirectory(from, out, { hostnames: [["usa", "mail.contoso.com"]], exchange2003Mail: { Pop3: { port: 995, encryption: "Ssl" }, Imap4: { port: 993, encryption: "Ssl" } } });
    expect(r.errors.map(formatProblem)).toEqual([]);
    const warnings = r.warnings.map(formatProblem).filter((w) => w.startsWith("Get-OrganizationRelationship.xml"));
    expect(warnings).toContain("Get-OrganizationRelationship.xml: Fabrikam (object 2): not imported: not a relationship with Exchange Online (no *.onmicrosoft.com domain in DomainNames)");
    expect(warnings.some((w) => w.includes("Tailspin Online (object 3): TargetOwaURL is not set"))).toBe(true);
    const docs = (await readFile(join(out, "hybrid.yaml"), "utf8")).split(/^---$/m).map((d) => parse(d)).filter(Boolean);
    expect(docs).toEqual([
      {
        apiVersion: "casgateway.io/v1alpha1",
        kind: "OrganizationRelationship",
        metadata: { name: "o365-to-on-premises-1234", annotations: { "casgateway.io/exchange-name": "O365 to On-premises - 1234" } },
        spec: {
          domainNames: ["contoso.mail.onmicrosoft.com", "contoso.onmicrosoft.com"],
          targetOwaUrl: "https://outlook.office.com/mail",
          targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync",
          targetAutodiscoverEpr: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc/WSSecurity",
          enabled: true,
        },
      },
      {
        apiVersion: "casgateway.io/v1alpha1",
        kind: "OrganizationRelationship",
        metadata: { name: "tailspin-online", annotations: { "casgateway.io/exchange-name": "Tailspin Online" } },
        spec: { domainNames: ["tailspin.mail.onmicrosoft.com"], targetOwaUrl: "https://outlook.office365.com/owa/", targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync", enabled: false },
      },
    ]);
  });
});
