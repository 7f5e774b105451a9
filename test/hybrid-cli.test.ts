// R-HYB-1 (docs/rules.md) from the command line: `explain` shows why a mailbox in Exchange Online is
// sent to the cloud (the rule ID and its trace lines), and `validate` warns about a remote mailbox
// that no OrganizationRelationship covers. examples/contoso plus a relationship and a remote-mailbox
// export in a temporary directory.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExplain } from "../cli/commands/explain.js";
import { runValidate } from "../cli/commands/validate.js";

const ROOT = join(import.meta.dirname, "..");
let tmp: string;
let base: { manifests: string; directory: string };

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "cas-hybrid-cli-"));
  const manifests = join(tmp, "manifests");
  mkdirSync(manifests);
  for (const f of readdirSync(join(ROOT, "examples/contoso"))) if (f.endsWith(".yaml")) copyFileSync(join(ROOT, "examples/contoso", f), join(manifests, f));
  writeFileSync(
    join(manifests, "hybrid.yaml"),
    `apiVersion: casgateway.io/v1alpha1
kind: OrganizationRelationship
metadata:
  name: office365
spec:
  domainNames: [contoso.mail.onmicrosoft.com]
  targetOwaUrl: https://outlook.office.com/mail
  targetActiveSyncUrl: https://outlook.office365.com/Microsoft-Server-ActiveSync
  targetAutodiscoverEpr: https://autodiscover-s.outlook.com/autodiscover/autodiscover.xml
`,
  );
  const directory = join(tmp, "mailboxes.csv");
  writeFileSync(
    directory,
    `"PrimarySmtpAddress","UserPrincipalName","SamAccountName","Database","RecipientTypeDetails","RemoteRoutingAddress","EmailAddresses"
"alice@contoso.com","alice@contoso.com","alice","DB-USA-2010","UserMailbox","","SMTP:alice@contoso.com"
"mia@contoso.com","mia@contoso.com","mia","","RemoteUserMailbox","SMTP:mia@contoso.mail.onmicrosoft.com","SMTP:mia@contoso.com"
"zoe@contoso.com","zoe@contoso.com","zoe","","RemoteSharedMailbox","zoe@fabrikam.mail.onmicrosoft.com","SMTP:zoe@contoso.com"
`,
  );
  base = { manifests, directory };
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("R-HYB-1 in explain and validate", () => {
  it("R-HYB-1: explain prints the 451 to the cloud ActiveSync URL with the rule's trace", async () => {
    const r = await runExplain({ ...base, url: "https://mail.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=mia&DeviceId=d1&DeviceType=iPhone", user: "mia@contoso.com", method: "POST" });
    expect(r.stderr).toBe("");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("decision: redirect (eas451: HTTP 451, X-MS-Location) → https://outlook.office365.com/Microsoft-Server-ActiveSync");
    expect(r.stdout).toContain("RemoteUserMailbox: target address mia@contoso.mail.onmicrosoft.com is in domain of OrganizationRelationship office365");
    expect(r.stdout).toMatch(/R-HYB-1: ActiveSync for a mailbox in Exchange Online: 451 with X-MS-Location/);
    expect(lines.at(-1)).toMatch(/^rules: .*R-HYB-1/);
  });

  it("R-HYB-1: explain of an IMAP4 login and of OWA", async () => {
    const imap = await runExplain({ ...base, url: "imap://mail.contoso.com", user: "mia" });
    expect(imap.stdout.split("\n")[0]).toBe("decision: error 421: Your mailbox has moved to Exchange Online: connect to outlook.office365.com.");
    expect(imap.stdout).toContain("rules: R-HYB-1");
    const owa = await runExplain({ ...base, url: "https://mail.contoso.com/owa/", user: "mia@contoso.com" });
    expect(owa.decision).toMatchObject({ outcome: "redirect", url: "https://outlook.office.com/mail" });
    expect(owa.stdout).toContain("R-HYB-1: OWA for a mailbox in Exchange Online");
  });

  it("R-HYB-1: validate counts the relationship and warns about a remote mailbox no relationship covers", async () => {
    const r = await runValidate(base);
    expect(r.exitCode).toBe(0);
    expect(r.report[0]).toMatch(/^OK: 3 sites, \d+ servers, \d+ virtual directories, \d+ databases, 1 organisation relationship, 3 mailboxes; 1 warning;/);
    expect(r.problems).toEqual([
      `${base.directory}:4:1: Mailbox/zoe@contoso.com: RemoteRoutingAddress: warning: R-HYB-1: RemoteSharedMailbox with target address zoe@fabrikam.mail.onmicrosoft.com: no enabled OrganizationRelationship lists fabrikam.mail.onmicrosoft.com; requests for this mailbox will be refused`,
    ]);
  });
});
