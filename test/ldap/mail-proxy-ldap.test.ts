// The LDAP directory wired into `cas-gateway mail-proxy` (startMailProxy with flags as the command
// parses them): a real slapd holds the mail test organisation's users (homeMDB naming its
// databases, no CSV anywhere), real Dovecot servers stand behind, python imaplib/poplib in front.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MailProxyFlags, startMailProxy, type RunningMailProxy } from "../../cli/commands/mail-proxy.js";
import { directoryOptionsFromFlags } from "../../sidecar/directory/open-directory.js";
import { dovecotAvailable, freePort } from "../mail/dovecot.js";
import { USERS, mailObjects, pyClient, sha256, startMailWorld, type MailWorld } from "../mail/fixture.js";
import { RawClient } from "../mail/raw.js";
import { contosoLdif, userEntry } from "./fixtures.js";
import { BASE_DN, BIND_DN, BIND_PASSWORD, type Slapd, slapdMissing, startSlapd } from "./slapd.js";

const missing = slapdMissing() ?? (dovecotAvailable() ? undefined : "needs Dovecot (/usr/sbin/dovecot) and root");
const ROOT = "DC=contoso,DC=com";

describe.skipIf(missing !== undefined)(`cas-gateway mail-proxy --directory ldap://${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let w: MailWorld;
  let slapd: Slapd;
  let running: RunningMailProxy;
  const tmp = mkdtempSync(join(tmpdir(), "cas-ldap-mail-"));
  const port = (p: string) => running.proxy.addresses().find((a) => a.protocol === p)!.port;

  beforeAll(async () => {
    w = await startMailWorld();
    const objects = mailObjects({ east: w.east, west: w.west, northImapPort: await freePort(), northPop3Port: await freePort() });
    mkdirSync(join(tmp, "manifests"));
    writeFileSync(join(tmp, "manifests", "org.yaml"), objects.map((o) => stringify(o)).join("---\n"));
    // The mail organisation's users, in LDAP only (sAMAccountNames distinct from contoso's).
    const user = (sam: string, primary: string, database: string) =>
      userEntry(w.topology, { cn: `Mail ${sam}`, sam, domainDn: ROOT, ou: "Users", primary, proxies: [], upn: primary, database });
    const fx = await contosoLdif();
    slapd = await startSlapd({
      ldif: fx.ldif + user("m-alice", USERS.alice.user, "db-east") + user("m-bob", USERS.bob.user, "db-west") + user("m-nora", USERS.nora.user, "db-north"),
    });
    const pw = join(tmp, "bind-password");
    writeFileSync(pw, BIND_PASSWORD);
    running = await startMailProxy(
      MailProxyFlags.parse({
        manifests: join(tmp, "manifests"),
        directory: `${slapd.url}/${BASE_DN}`,
        imap: "127.0.0.1:0",
        pop3: "127.0.0.1:0",
        tlsCert: w.certs.certFile,
        tlsKey: w.certs.keyFile,
        backendCa: w.certs.caFile,
        frontDoorHost: "east.contoso.test",
        starttls: true,
        down: [],
        admin: "127.0.0.1:0",
        logLevel: "silent",
      }),
      directoryOptionsFromFlags({ ldapBindDn: BIND_DN, ldapPasswordFile: pw, ldapTimeoutMs: "3000" }),
    );
  }, 120_000);

  afterAll(async () => {
    await running?.stop();
    await w?.stop();
    await slapd?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("R-POP-2: bob (LDAP homeMDB db-west) logs in over IMAP at east and reads his west mailbox", async () => {
    const r = await pyClient("imap", port("Imap4"), "starttls", USERS.bob.user, USERS.bob.password, w.certs.caFile);
    expect(r.error).toBeUndefined();
    expect(r.sha256).toEqual(w.west.maildirMessages(USERS.bob.user).map(sha256));
  }, 60_000);

  it("R-POP-1: alice (LDAP homeMDB db-east) logs in over POP3 at her own site", async () => {
    const r = await pyClient("pop3", port("Pop3"), "plain", USERS.alice.user, USERS.alice.password);
    expect(r.error).toBeUndefined();
  }, 60_000);

  it("nora (LDAP homeMDB db-north, server's port closed): NO [UNAVAILABLE], not a hang", async () => {
    const c = await RawClient.connect(port("Imap4"));
    try {
      await c.waitFor(/^\* OK /);
      c.send(`t LOGIN ${USERS.nora.user} ${USERS.nora.password}\r\n`);
      const m = await c.waitFor(/t (NO .*)\r\n/);
      expect(m[1]).toBe("NO [UNAVAILABLE] The mailbox server is not available. Try again later.");
    } finally {
      c.destroy();
    }
  }, 60_000);

  it("a user LDAP does not know: the receiving site's server refuses, as for a wrong password", async () => {
    const r = await pyClient("imap", port("Imap4"), "plain", "nobody@contoso.test", "x");
    expect(r.error).toContain("[AUTHENTICATIONFAILED]");
  }, 60_000);

  it("slapd down: a user never looked up gets a temporary failure, not a wrong-password answer", async () => {
    await slapd.stop();
    try {
      const c = await RawClient.connect(port("Imap4"));
      try {
        await c.waitFor(/^\* OK /);
        c.send(`t LOGIN ${USERS.carol.user.replace("carol", "zed")} x\r\n`);
        const m = await c.waitFor(/t (NO .*)\r\n/);
        expect(m[1]).toMatch(/^NO \[UNAVAILABLE\]/);
      } finally {
        c.destroy();
      }
    } finally {
      await slapd.start();
    }
  }, 60_000);
});
