// R-HYB-1 (docs/rules.md): a mailbox that moved to Exchange Online is never routed on premises; where
// it goes comes from the OrganizationRelationship. The directory knows remote mailboxes from the CSV
// export (RecipientTypeDetails, RemoteRoutingAddress) and from LDAP (msExchRecipientTypeDetails,
// targetAddress).
import { describe, expect, it } from "vitest";
import { ALL_HEALTHY } from "../../model/health.js";
import { CsvDirectory, parseCsvDirectory } from "../../model/directory/csv-directory.js";
import { columnsOf, rowToRecord } from "../../model/directory/mailbox-row.js";
import { recordFromEntry } from "../directory/ldap-directory.js";
import { decide } from "./engine.js";
import { autodiscoverRedirectAddr } from "../authz/response.js";
import { basic, buildOrg, httpReq, mailbox, mailReq, vd, type OrgSpec } from "./test-org.js";
import type { MailboxRecord } from "../../model/directory/types.js";

const A = "a.example.org";
const REL = { name: "office365", domainNames: ["example.mail.onmicrosoft.com"], targetOwaUrl: "https://outlook.office.com/mail", targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync", targetAutodiscoverEpr: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc/WSSecurity" };
const topo = (rels: NonNullable<OrgSpec["orgRels"]> = [REL], redirect: "Manual" | "Silent" = "Silent") =>
  buildOrg({
    sites: [{ name: "a", hostnames: [A] }],
    servers: [
      { name: "a-cas", site: "a", version: "2016", roles: ["ClientAccess", "Mailbox"], vdirs: [vd("Owa", { redirect, externalUrl: `https://${A}/owa` }), vd("Ecp"), vd("ActiveSync"), vd("Ews"), vd("Autodiscover"), vd("Mapi"), vd("Imap4"), vd("Oab")] },
    ],
    databases: [{ name: "DB1", active: "a-cas" }],
    orgRels: rels,
  });
const moved: MailboxRecord = { ...mailbox("mia", ""), remote: { targetAddress: "mia@example.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" } };
const DIR = new CsvDirectory([mailbox("ann", "DB1"), moved]);
const T = topo();
const as = (path: string, over = {}) => httpReq(A, path, { headers: { authorization: basic("mia@example.org") }, ...over });

describe("R-HYB-1: mailboxes in Exchange Online", () => {
  it("R-HYB-1: OWA and ECP are redirected to the cloud OWA (Silent: 302; Manual: the page)", () => {
    const d = decide(as("/owa/"), T, DIR, ALL_HEALTHY);
    expect(d).toMatchObject({ outcome: "redirect", kind: "silent", url: REL.targetOwaUrl });
    expect(d.rules).toContain("R-HYB-1");
    expect(decide(as("/ecp/"), topo([REL], "Manual"), DIR, ALL_HEALTHY)).toMatchObject({ outcome: "redirect", kind: "manual", url: REL.targetOwaUrl });
  });

  it("R-HYB-1: ActiveSync gets a 451 to the cloud ActiveSync URL", () => {
    const d = decide(as("/Microsoft-Server-ActiveSync?Cmd=Sync&User=mia&DeviceId=d&DeviceType=p", { method: "POST" }), T, DIR, ALL_HEALTHY);
    expect(d).toMatchObject({ outcome: "redirect", kind: "eas451", url: REL.targetActiveSyncUrl });
    expect(d.rules).toContain("R-HYB-1");
  });

  it("R-HYB-1: POX Autodiscover answers redirectAddr to the target address (both response schemas); SOAP Autodiscover goes to the cloud's, or the error names the target address", () => {
    const pox = decide(as("/Autodiscover/Autodiscover.xml", { method: "POST" }), T, DIR, ALL_HEALTHY);
    expect(pox).toMatchObject({ outcome: "redirect", kind: "autodiscoverAddr", url: "mia@example.mail.onmicrosoft.com" });
    expect(pox.rules).toContain("R-HYB-1");
    const outlook = autodiscoverRedirectAddr("mia@example.mail.onmicrosoft.com", "<Autodiscover><Request><EMailAddress>mia@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>");
    expect(outlook).toContain("<Action>redirectAddr</Action>");
    expect(outlook).toContain("<RedirectAddr>mia@example.mail.onmicrosoft.com</RedirectAddr>");
    const mobile = autodiscoverRedirectAddr("mia@example.mail.onmicrosoft.com", "<Autodiscover><Request><EMailAddress>mia@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>");
    expect(mobile).toContain('<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006">');
    expect(mobile).toContain("<Redirect>mia@example.mail.onmicrosoft.com</Redirect>");
    expect(autodiscoverRedirectAddr("<x>@y", undefined)).toBeUndefined();
    const svc = decide(as("/autodiscover/autodiscover.svc", { method: "POST" }), T, DIR, ALL_HEALTHY);
    expect(svc).toMatchObject({ outcome: "redirect", kind: "silent", url: REL.targetAutodiscoverEpr });
    const { targetAutodiscoverEpr: _drop, ...noEpr } = REL;
    const d = decide(as("/autodiscover/autodiscover.svc", { method: "POST" }), topo([noEpr]), DIR, ALL_HEALTHY);
    expect(d).toMatchObject({ outcome: "error", status: 421 });
    if (d.outcome === "error") expect(d.reason).toContain("mia@example.mail.onmicrosoft.com");
  });

  it("R-HYB-1: EWS, MAPI, OAB-by-identity and IMAP4 get a clear error naming the cloud endpoint; nothing on premises", () => {
    for (const req of [as("/EWS/Exchange.asmx", { method: "POST" }), as("/mapi/emsmdb/", { method: "POST" }), as("/rpc/rpcproxy.dll"), as("/OAB/"), mailReq(A, "Imap4", "mia@example.org")]) {
      const d = decide(req, T, DIR, ALL_HEALTHY);
      expect(d, req.path).toMatchObject({ outcome: "error", status: 421 });
      expect(d.rules).toContain("R-HYB-1");
      if (d.outcome === "error") expect(d.reason).toContain(req.mail ? "connect to outlook.office365.com." : "https://outlook.office365.com");
      if (d.outcome === "error") expect(d.cloudHost).toBe("outlook.office365.com");
    }
  });

  it("R-HYB-1: without an organisation relationship for the target's domain the error says so; ordinary mailboxes are untouched", () => {
    const d = decide(as("/owa/"), topo([]), DIR, ALL_HEALTHY);
    expect(d).toMatchObject({ outcome: "error", status: 502 });
    expect(d.rules).toContain("R-HYB-1");
    expect(decide(httpReq(A, "/owa/", { headers: { authorization: basic("ann@example.org") } }), T, DIR, ALL_HEALTHY).rules).not.toContain("R-HYB-1");
    expect(topo([REL, { ...REL, name: "second" }]).problems.map((p) => p.reason)).toContain("DuplicateDomain");
  });

  it("R-HYB-1: the CSV export's RemoteUserMailbox rows and LDAP's msExchRecipientTypeDetails/targetAddress make remote mailboxes", () => {
    const header = ["PrimarySmtpAddress", "Database", "RecipientTypeDetails", "RemoteRoutingAddress"];
    const at = columnsOf(header, "x.csv", 1);
    expect(rowToRecord(["mia@example.org", "", "RemoteUserMailbox", "SMTP:mia@example.mail.onmicrosoft.com"], at, "x.csv", 2).remote).toEqual({ targetAddress: "mia@example.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" });
    expect(rowToRecord(["ann@example.org", "DB1", "UserMailbox", ""], at, "x.csv", 3).remote).toBeUndefined();
    expect(() => rowToRecord(["bad@example.org", "", "RemoteUserMailbox", "nope"], at, "x.csv", 4)).toThrow(/x\.csv:4: RemoteRoutingAddress/);
    expect(() => rowToRecord(["bad@example.org", "", "UserMailbox", ""], at, "x.csv", 5)).toThrow(/Database: is empty/);
    // A Get-RemoteMailbox export: no Database column at all.
    const remoteCsv = parseCsvDirectory(
      `#TYPE Microsoft.Exchange.Data.Directory.Management.RemoteMailbox\n"Name","RecipientTypeDetails","RemoteRoutingAddress","PrimarySmtpAddress","UserPrincipalName","SamAccountName","EmailAddresses"\n"mia","RemoteUserMailbox","mia@example.mail.onmicrosoft.com","mia@example.org","mia@example.org","mia","SMTP:mia@example.org smtp:mia@example.mail.onmicrosoft.com"\n`,
      "remote.csv",
    );
    const found = remoteCsv.find("mia");
    expect(found.status === "found" && found.mailbox.remote).toEqual({ targetAddress: "mia@example.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" });
    expect(decide(as("/owa/"), T, remoteCsv, ALL_HEALTHY)).toMatchObject({ outcome: "redirect", url: REL.targetOwaUrl });
    expect(() => parseCsvDirectory(`"Name","RecipientTypeDetails","PrimarySmtpAddress"\n"ann","UserMailbox","ann@example.org"\n`, "mixed.csv")).toThrow(/mixed\.csv:2: Database: is empty/);
    const entry = { dn: "CN=Mia,OU=Users,DC=example,DC=org", mail: "mia@example.org", proxyAddresses: ["SMTP:mia@example.org"], msExchRecipientTypeDetails: "2147483648", targetAddress: "SMTP:mia@example.mail.onmicrosoft.com" };
    expect(recordFromEntry(entry as never)?.remote).toEqual({ targetAddress: "mia@example.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" });
  });
});
