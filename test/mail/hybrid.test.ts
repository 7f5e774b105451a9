// R-HYB-1 (docs/rules.md) in the POP3/IMAP4 proxy, with real clients (Python imaplib / poplib): a
// mailbox that moved to Exchange Online is never proxied to an on-premises server. IMAP4 gets
// NO [REFERRAL imap://<cloud host>/] (RFC 2221 login referral), POP3 -ERR [SYS/PERM]; both name the
// cloud host. The on-premises mailbox server is a loopback listener that must see no connection.
import { createServer, type Server } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiObject } from "../../crds/index.js";
import { parseCsvDirectory } from "../../model/directory/csv-directory.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { buildTopology } from "../../model/topology/build.js";
import { decide, identityCandidates } from "../../sidecar/decision/engine.js";
import { MailProxy } from "../../sidecar/mail/index.js";
import { makeTestCerts } from "./certs.js";
import { removeDir } from "./dovecot.js";
import { pyClient } from "./fixture.js";

const API = "casgateway.io/v1alpha1";
const meta = (name: string) => ({ name, namespace: "mail-test" });
const CSV = `#TYPE Microsoft.Exchange.Data.Directory.Management.RemoteMailbox
"Name","PrimarySmtpAddress","UserPrincipalName","SamAccountName","Database","RecipientTypeDetails","RemoteRoutingAddress","EmailAddresses"
"mia","mia@contoso.test","mia@contoso.test","mia","","RemoteUserMailbox","SMTP:mia@contoso.mail.onmicrosoft.com","SMTP:mia@contoso.test"
`;

describe("R-HYB-1: the mail proxy refuses a mailbox in Exchange Online, naming the cloud host", () => {
  let onPrem: Server;
  let accepted = 0;
  let proxy: MailProxy;
  let ports: { imap: number; pop3: number };
  let dir: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cas-mail-hybrid-"));
    const certs = makeTestCerts(join(dir, "certs"));
    // The on-premises mailbox server: anything reaching it is a failure of the rule.
    onPrem = createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((r) => onPrem.listen(0, "127.0.0.1", r));
    const port = (onPrem.address() as { port: number }).port;
    const objects = [
      { apiVersion: API, kind: "ADSite", metadata: meta("east"), spec: { hostnames: ["east.contoso.test"] } },
      { apiVersion: API, kind: "ClientAccessServer", metadata: meta("east-mbx"), spec: { site: "east", fqdn: "east-mbx.east.contoso.test", exchangeVersion: "2016", roles: ["ClientAccess", "Mailbox"] } },
      ...(["Imap4", "Pop3"] as const).map((service) => ({
        apiVersion: API,
        kind: "VirtualDirectory",
        metadata: meta(`east-mbx-${service.toLowerCase()}`),
        spec: { server: "east-mbx", service, internalConnectionSettings: [{ hostname: "127.0.0.1", port, encryption: "None" }], internalAuthenticationMethods: ["Basic"] },
      })),
      { apiVersion: API, kind: "MailboxDatabase", metadata: meta("db-east"), spec: { activeServer: "east-mbx", servers: ["east-mbx"] } },
      {
        apiVersion: API,
        kind: "OrganizationRelationship",
        metadata: meta("office365"),
        spec: {
          domainNames: ["contoso.mail.onmicrosoft.com"],
          targetOwaUrl: "https://outlook.office.com/mail",
          targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync",
        },
      },
    ].map((o) => ApiObject.parse(o));
    const topology = buildTopology(objects);
    expect(topology.problems.filter((p) => p.severity === "error")).toEqual([]);
    proxy = new MailProxy({
      listeners: [
        { protocol: "Imap4", port: 0, frontDoorHost: "east.contoso.test", name: "imap" },
        { protocol: "Pop3", port: 0, frontDoorHost: "east.contoso.test", name: "pop3" },
      ],
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
      state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }),
      directory: parseCsvDirectory(CSV, "remote-mailboxes.csv"),
      decide,
      identityCandidates,
      logger: pino({ level: "info" }, { write: (l: string) => void logLines.push(l) }),
    });
    const bound = await proxy.start();
    ports = { imap: bound.find((b) => b.name === "imap")!.port, pop3: bound.find((b) => b.name === "pop3")!.port };
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
    await new Promise<void>((r) => (onPrem ? onPrem.close(() => r()) : r()));
    if (dir) removeDir(dir);
  });

  it("R-HYB-1: IMAP4 (imaplib) gets NO [REFERRAL imap://outlook.office365.com/] and POP3 (poplib) -ERR [SYS/PERM] naming outlook.office365.com; nothing reaches the on-premises server", async () => {
    const imap = await pyClient("imap", ports.imap, "plain", "mia@contoso.test", "pw");
    expect(imap.ok).toBe(false);
    expect(imap.error).toMatch(/\[REFERRAL imap:\/\/outlook\.office365\.com\/\] Your mailbox has moved to Exchange Online: connect to outlook\.office365\.com\./);
    const pop3 = await pyClient("pop3", ports.pop3, "plain", "mia", "pw");
    expect(pop3.ok).toBe(false);
    expect(pop3.error).toMatch(/-ERR \[SYS\/PERM\] Your mailbox has moved to Exchange Online: connect to outlook\.office365\.com\./);
    expect(accepted).toBe(0);
    // The decision log line carries the rule ID.
    expect(logLines.join("")).toMatch(/"rules":\[[^\]]*"R-HYB-1"/);
  }, 60_000);
});
