// The POP3/IMAP4 proxy against real software: two Dovecot servers as the mailbox servers of two
// sites, the real decision engine, and real clients (Python imaplib/poplib, curl, raw sockets).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthFromDown } from "../../model/health.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { dovecotAvailable } from "./dovecot.js";
import { buildTopology } from "../../model/topology/build.js";
import { USERS, mailObjects, mailTopology, pyClient, run, sha256, startMailWorld, type MailWorld } from "./fixture.js";
import { RawClient } from "./raw.js";

// Needs Debian's dovecot-imapd/dovecot-pop3d (scripts/test-deps.txt) and root to start Dovecot.
const skip = !dovecotAvailable();
const hashes = (bs: Buffer[]) => bs.map(sha256);
const INTERNAL = /127\.0\.0\.1|east-mbx|west-mbx|north-mbx|contoso\.test:\d/;

describe.skipIf(skip)("mail proxy with Dovecot back ends", () => {
  let w: MailWorld;
  beforeAll(async () => {
    w = await startMailWorld();
  });
  afterAll(async () => {
    await w?.stop();
  });

  const aliceMail = () => hashes(w.east.maildirMessages(USERS.alice.user));
  const bobMail = () => hashes(w.west.maildirMessages(USERS.bob.user));

  describe("IMAP4 with imaplib", () => {
    it("R-POP-3: same-site mailbox is served locally; every message arrives intact", async () => {
      const r = await pyClient("imap", w.ports.imap, "plain", USERS.alice.user, USERS.alice.password);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(aliceMail());
    });

    it("R-POP-3: cross-site mailbox is proxied over STARTTLS to the target's internalConnectionSettings", async () => {
      const r = await pyClient("imap", w.ports.imap, "starttls", USERS.bob.user, USERS.bob.password, w.certs.caFile);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(bobMail());
    });

    it("implicit TLS listener (imaps) with a password that needs quoting", async () => {
      const r = await pyClient("imap", w.ports.imaps, "ssl", USERS.carol.user, USERS.carol.password, w.certs.caFile);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(hashes(w.west.maildirMessages(USERS.carol.user)));
    });

    it("wrong password: tagged NO [AUTHENTICATIONFAILED], as the mailbox server said", async () => {
      const r = await pyClient("imap", w.ports.imap, "plain", USERS.alice.user, "not-the-password");
      expect(r.ok).toBe(false);
      expect(r.error).toContain("[AUTHENTICATIONFAILED]");
    });

    it("unknown user: the receiving site's server answers, the same failure as a wrong password (nothing revealed)", async () => {
      const r = await pyClient("imap", w.ports.imap, "plain", "nobody@contoso.test", "x");
      expect(r.ok).toBe(false);
      expect(r.error).toContain("[AUTHENTICATIONFAILED] Authentication failed.");
    });
  });

  describe("POP3 with poplib", () => {
    it("R-POP-3: same-site mailbox, USER/PASS in the clear", async () => {
      const r = await pyClient("pop3", w.ports.pop3, "plain", USERS.alice.user, USERS.alice.password);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(aliceMail());
    });

    it("R-POP-3: cross-site mailbox through STLS; the proxy reaches the backend over implicit TLS (Ssl)", async () => {
      const r = await pyClient("pop3", w.ports.pop3, "starttls", USERS.bob.user, USERS.bob.password, w.certs.caFile);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(bobMail());
    });

    it("implicit TLS listener (pop3s)", async () => {
      const r = await pyClient("pop3", w.ports.pop3s, "ssl", USERS.carol.user, USERS.carol.password, w.certs.caFile);
      expect(r.error).toBeUndefined();
      expect(r.sha256).toEqual(hashes(w.west.maildirMessages(USERS.carol.user)));
    });

    it("wrong password: -ERR [AUTH]", async () => {
      const r = await pyClient("pop3", w.ports.pop3, "plain", USERS.bob.user, "nope");
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/-ERR \[AUTH\]/);
    });
  });

  describe("curl", () => {
    const curl = (url: string, user: { user: string; password: string }, ...extra: string[]) =>
      run("curl", ["-sS", "--max-time", "30", "--cacert", w.certs.caFile, ...extra, url, "-u", `${user.user}:${user.password}`]);

    it("imap:// with --ssl-reqd (STARTTLS), cross-site", async () => {
      const r = await curl(`imap://localhost:${w.ports.imap}/INBOX/;MAILINDEX=2`, USERS.bob, "--ssl-reqd");
      expect(r.stderr).toBe("");
      expect(sha256(Buffer.from(r.stdout, "latin1"))).toBe(bobMail()[1]);
    });

    it("imaps:// against the proxy's implicit TLS, same site", async () => {
      const r = await curl(`imaps://localhost:${w.ports.imaps}/INBOX/;MAILINDEX=1`, USERS.alice);
      expect(r.stderr).toBe("");
      expect(sha256(Buffer.from(r.stdout, "latin1"))).toBe(aliceMail()[0]);
    });

    it("pop3:// with --ssl-reqd (STLS), pop3s://, and plain pop3://", async () => {
      const a = await curl(`pop3://localhost:${w.ports.pop3}/2`, USERS.bob, "--ssl-reqd");
      expect(a.stderr).toBe("");
      expect(sha256(Buffer.from(a.stdout, "latin1"))).toBe(bobMail()[1]);
      const b = await curl(`pop3s://localhost:${w.ports.pop3s}/1`, USERS.alice);
      expect(b.stderr).toBe("");
      expect(sha256(Buffer.from(b.stdout, "latin1"))).toBe(aliceMail()[0]);
      // And without TLS at all (same site, plain listener).
      const c = await curl(`pop3://127.0.0.1:${w.ports.pop3}/3`, USERS.alice);
      expect(c.stderr).toBe("");
      expect(sha256(Buffer.from(c.stdout, "latin1"))).toBe(aliceMail()[2]);
    });

    it("imap:// plain, -k for the self-signed certificate, AUTH=LOGIN", async () => {
      const r = run("curl", ["-sS", "-k", "--ssl-reqd", "--login-options", "AUTH=LOGIN", `imap://127.0.0.1:${w.ports.imap}/INBOX/;MAILINDEX=1`, "-u", `${USERS.alice.user}:${USERS.alice.password}`]);
      const res = await r;
      expect(res.stderr).toBe("");
      expect(sha256(Buffer.from(res.stdout, "latin1"))).toBe(aliceMail()[0]);
    });

    // curl prefers NTLM when it is offered, so only a proxy configured to advertise it is used here.
    const ntlmCurl = async (user: { user: string; password: string }) => {
      const p = await w.extraProxy({ policy: { advertiseNtlm: true } });
      const port = p.addresses().find((a) => a.protocol === "Imap4")!.port;
      return run("curl", ["-v", "--max-time", "20", "--login-options", "AUTH=NTLM", `imap://127.0.0.1:${port}/INBOX`, "-u", `${user.user}:${user.password}`]);
    };

    it("R-POP-4: IMAP4 NTLM to a mailbox in another site is refused with a clear NO", async () => {
      const r = await ntlmCurl(USERS.bob);
      expect(r.code).not.toBe(0);
      const no = /< (A\d+ NO .*)/.exec(r.stderr)?.[1] ?? "";
      expect(no).toMatch(/^A\d+ NO \[CANNOT\] Sign in with a user name and password/);
      expect(no).not.toMatch(INTERNAL);
    });

    it("NTLM to a same-site mailbox is refused too: the proxy cannot relay it", async () => {
      const r = await ntlmCurl(USERS.alice);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/< A\d+ NO \[CANNOT\] NTLM authentication cannot be passed on/);
    });
  });

  describe("failures are protocol-correct and prompt", () => {
    it("R-POP-5: the health view marks the target's IMAP4 down: NO [UNAVAILABLE], no internal names", async () => {
      w.setHealth(healthFromDown(["west-mbx/Imap4"]));
      try {
        const c = await RawClient.connect(w.ports.imap);
        await c.waitFor(/^\* OK .*\r\n/);
        c.send(`a1 LOGIN ${USERS.bob.user} ${USERS.bob.password}\r\n`);
        const m = await c.waitFor(/a1 (NO .*)\r\n/);
        expect(m[1]).toMatch(/^NO \[UNAVAILABLE\] /);
        expect(m[1]).not.toMatch(INTERNAL);
        // POP3 of the same server is still up.
        const p = await pyClient("pop3", w.ports.pop3, "plain", USERS.bob.user, USERS.bob.password);
        expect(p.error).toBeUndefined();
        c.destroy();
      } finally {
        w.setHealth(ALL_HEALTHY);
      }
    });

    it("backend down (connection refused although healthy): NO [UNAVAILABLE] / -ERR [SYS/TEMP], never a hang", async () => {
      const c = await RawClient.connect(w.ports.imap);
      await c.waitFor(/^\* OK /);
      c.send(`t LOGIN ${USERS.nora.user} ${USERS.nora.password}\r\n`);
      const m = await c.waitFor(/t (NO .*)\r\n/);
      expect(m[1]).toBe("NO [UNAVAILABLE] The mailbox server is not available. Try again later.");
      c.destroy();
      const p = await RawClient.connect(w.ports.pop3);
      await p.waitFor(/^\+OK /);
      p.send(`USER ${USERS.nora.user}\r\nPASS ${USERS.nora.password}\r\n`);
      const e = await p.waitFor(/\r\n(-ERR .*)\r\n/);
      expect(e[1]).toBe("-ERR [SYS/TEMP] The mailbox server is not available. Try again later.");
      p.destroy();
    });

    it("permanent refusals read as permanent, outages as temporary (Python imaplib / poplib): [CONTACTADMIN] / [SYS/PERM] vs [UNAVAILABLE] / [SYS/TEMP]", async () => {
      // west's server without POP3/IMAP4 directories: bob's mailbox has no server this gateway can
      // log him in at (R-GEN-2, engine 502) until an administrator changes the organisation.
      const objects = mailObjects({ east: w.east, west: w.west, northImapPort: 1, northPop3Port: 1 }).filter(
        (o) => !(o.kind === "VirtualDirectory" && o.metadata.name.startsWith("west-mbx-")),
      );
      const noMailServer = buildTopology(objects);
      w.state.set({ topology: noMailServer, health: ALL_HEALTHY, version: `${noMailServer.version}/no-west-mail` });
      try {
        const imap = await pyClient("imap", w.ports.imap, "plain", USERS.bob.user, USERS.bob.password);
        expect(imap.ok).toBe(false);
        expect(imap.error).toMatch(/^b?'?\[CONTACTADMIN\] No server is set up to open your mailbox/);
        const pop3 = await pyClient("pop3", w.ports.pop3, "plain", USERS.bob.user, USERS.bob.password);
        expect(pop3.ok).toBe(false);
        expect(pop3.error).toMatch(/-ERR \[SYS\/PERM\] No server is set up to open your mailbox/);
      } finally {
        w.setHealth(ALL_HEALTHY); // back to the world's own topology
      }
      // An outage (the server is marked down, R-POP-5): temporary, the client may retry.
      w.setHealth(healthFromDown(["west-mbx/Imap4", "west-mbx/Pop3"]));
      try {
        const imap = await pyClient("imap", w.ports.imap, "plain", USERS.bob.user, USERS.bob.password);
        expect(imap.error).toMatch(/^b?'?\[UNAVAILABLE\] /);
        const pop3 = await pyClient("pop3", w.ports.pop3, "plain", USERS.bob.user, USERS.bob.password);
        expect(pop3.error).toMatch(/-ERR \[SYS\/TEMP\] /);
      } finally {
        w.setHealth(ALL_HEALTHY);
      }
    });

    it("R-GEN-3: the mailbox server's certificate is validated (without the CA: unavailable) unless the server opts out", async () => {
      const strict = await w.extraProxy({ backendCa: undefined as unknown as string });
      const port = strict.addresses().find((a) => a.protocol === "Imap4")!.port;
      const c = await RawClient.connect(port);
      await c.waitFor(/^\* OK /);
      c.send(`v LOGIN ${USERS.bob.user} ${USERS.bob.password}\r\n`);
      const m = await c.waitFor(/v (NO .*)\r\n/);
      expect(m[1]).toMatch(/^NO \[UNAVAILABLE\]/);
      c.destroy();
      expect(w.logText()).toMatch(/self[- ]signed|unable to verify|certificate/i);
      // R-GEN-3: the per-server opt-out (tls.insecureSkipVerify) lets the same login through.
      const skipping = mailTopology({ east: w.east, west: w.west, northImapPort: 1, northPop3Port: 1, westSkipVerify: true });
      w.state.set({ topology: skipping, health: ALL_HEALTHY, version: `${skipping.version}/skip` });
      try {
        const d = await RawClient.connect(port);
        await d.waitFor(/^\* OK /);
        d.send(`v2 LOGIN ${USERS.bob.user} ${USERS.bob.password}\r\n`);
        await d.waitFor(/v2 OK /);
        d.destroy();
      } finally {
        w.setHealth(ALL_HEALTHY); // back to the world's own topology
      }
    });
  });

  describe("IMAP4 syntax before authentication (raw socket)", () => {
    it("LOGIN with a synchronizing literal for a UTF-8 password", async () => {
      const c = await RawClient.connect(w.ports.imap);
      await c.waitFor(/^\* OK /);
      const pw = Buffer.from(USERS.dave.password, "utf8");
      c.send(`x1 LOGIN "${USERS.dave.user}" {${pw.length}}\r\n`);
      await c.waitFor(/\+ .*\r\n/);
      c.send(Buffer.concat([pw, Buffer.from("\r\n")]));
      await c.waitFor(/x1 OK \[CAPABILITY [^\]]*IDLE[^\]]*\] Logged in/);
      c.send("x2 LOGOUT\r\n");
      await c.waitFor(/x2 OK/);
      await c.waitClosed();
    });

    it("LOGIN with non-synchronizing literals (LITERAL+) and commands pipelined behind it", async () => {
      const c = await RawClient.connect(w.ports.imap);
      await c.waitFor(/^\* OK /);
      const u = Buffer.from(USERS.alice.user);
      const p = Buffer.from(USERS.alice.password);
      c.send(`y1 LOGIN {${u.length}+}\r\n${u} {${p.length}+}\r\n${p}\r\ny2 SELECT INBOX\r\ny3 LOGOUT\r\n`);
      await c.waitFor(/y1 OK /);
      await c.waitFor(/y2 OK /);
      await c.waitFor(/y3 OK /);
      expect(c.text).not.toContain("+ Ready");
      await c.waitClosed();
    });

    it("AUTHENTICATE PLAIN with SASL-IR, AUTHENTICATE LOGIN with prompts, and a cancelled exchange", async () => {
      const c = await RawClient.connect(w.ports.imap);
      await c.waitFor(/^\* OK /);
      c.send("z0 AUTHENTICATE PLAIN\r\n");
      await c.waitFor(/\+ \r\n/);
      c.send("*\r\n");
      await c.waitFor(/z0 BAD Authentication cancelled/);
      c.send("z1 AUTHENTICATE LOGIN\r\n");
      await c.waitFor(/\+ VXNlcm5hbWU6\r\n/);
      c.send(`${Buffer.from(USERS.bob.user).toString("base64")}\r\n`);
      await c.waitFor(/\+ UGFzc3dvcmQ6\r\n/);
      c.send(`${Buffer.from("wrong").toString("base64")}\r\n`);
      await c.waitFor(/z1 NO \[AUTHENTICATIONFAILED\]/);
      const ir = Buffer.from(`\0${USERS.bob.user}\0${USERS.bob.password}`).toString("base64");
      c.send(`z2 AUTHENTICATE PLAIN ${ir}\r\n`);
      await c.waitFor(/z2 OK /);
      c.send("z3 LOGOUT\r\n");
      await c.waitClosed();
    });

    it("pre-auth CAPABILITY, ID, NOOP, unknown commands and LOGOUT", async () => {
      const c = await RawClient.connect(w.ports.imap);
      await c.waitFor(/^\* OK \[CAPABILITY IMAP4rev1 [^\]]*STARTTLS[^\]]*\] /);
      expect(c.text).not.toContain("AUTH=NTLM");
      c.send('a CAPABILITY\r\nb ID ("name" "test")\r\nc NOOP\r\nd SELECT INBOX\r\ne LOGOUT\r\n');
      await c.waitFor(/e OK /);
      expect(c.text).toMatch(/\* CAPABILITY .*\r\na OK .*\r\n\* ID \("name" "cas-gateway"\)\r\nb OK .*\r\nc OK .*\r\nd BAD .*\r\n\* BYE .*\r\ne OK /);
      await c.waitClosed();
    });
  });

  describe("POP3 before authentication (raw socket)", () => {
    it("CAPA, AUTH PLAIN without initial response, pipelined commands after login", async () => {
      const c = await RawClient.connect(w.ports.pop3);
      await c.waitFor(/^\+OK /);
      c.send("CAPA\r\n");
      await c.waitFor(/\r\nSTLS\r\n[\s\S]*SASL PLAIN LOGIN\r\n[\s\S]*\r\n\.\r\n/);
      c.send("AUTH PLAIN\r\n");
      await c.waitFor(/\+ \r\n/);
      c.send(`${Buffer.from(`\0${USERS.alice.user}\0${USERS.alice.password}`).toString("base64")}\r\nSTAT\r\nQUIT\r\n`);
      await c.waitFor(/\+OK .*\r\n\+OK 3 \d+\r\n\+OK/);
      await c.waitClosed();
    });

    it("AUTH LOGIN with an initial response; APOP and unknown commands get -ERR", async () => {
      const c = await RawClient.connect(w.ports.pop3);
      await c.waitFor(/^\+OK /);
      c.send("APOP a b\r\nRETR 1\r\n");
      await c.waitFor(/-ERR .*\r\n-ERR .*\r\n/);
      c.send(`AUTH LOGIN ${Buffer.from(USERS.bob.user).toString("base64")}\r\n`);
      await c.waitFor(/\+ UGFzc3dvcmQ6\r\n/);
      c.send(`${Buffer.from(USERS.bob.password).toString("base64")}\r\n`);
      await c.waitFor(/\+OK Logged in/);
      c.send("QUIT\r\n");
      await c.waitClosed();
    });
  });

  describe("policy: no plaintext authentication before TLS", () => {
    it("IMAP advertises LOGINDISABLED and refuses LOGIN until STARTTLS; then logs in", async () => {
      const p = await w.extraProxy({ policy: { requireTlsForAuth: true } });
      const port = p.addresses().find((a) => a.protocol === "Imap4")!.port;
      const c = await RawClient.connect(port);
      await c.waitFor(/^\* OK \[CAPABILITY [^\]]*STARTTLS LOGINDISABLED\] /);
      c.send(`a LOGIN ${USERS.alice.user} ${USERS.alice.password}\r\n`);
      await c.waitFor(/a NO \[PRIVACYREQUIRED\]/);
      c.send("b STARTTLS\r\n");
      await c.waitFor(/b OK /);
      await c.startTls(w.certs.ca);
      c.send("c CAPABILITY\r\n");
      await c.waitFor(/\* CAPABILITY .*AUTH=PLAIN.*\r\nc OK/);
      expect(c.text).not.toContain("LOGINDISABLED");
      c.send(`d LOGIN ${USERS.alice.user} ${USERS.alice.password}\r\n`);
      await c.waitFor(/d OK /);
      c.destroy();
    });

    it("POP3 offers neither USER nor SASL until STLS", async () => {
      const p = await w.extraProxy({ policy: { requireTlsForAuth: true } });
      const port = p.addresses().find((a) => a.protocol === "Pop3")!.port;
      const r = await pyClient("pop3", port, "plain", USERS.alice.user, USERS.alice.password);
      expect(r.ok).toBe(false);
      expect(r.error).toContain("[AUTH] Plaintext authentication is disabled");
      const ok = await pyClient("pop3", port, "starttls", USERS.alice.user, USERS.alice.password, w.certs.caFile);
      expect(ok.error).toBeUndefined();
    });
  });

  it("metrics count connections, logins by outcome and relayed bytes; logs never hold a password", async () => {
    const text = await w.proxy.metrics.registry.metrics();
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Imap4",outcome="local"\} [1-9]/);
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Imap4",outcome="proxy"\} [1-9]/);
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Pop3",outcome="auth_failed"\} [1-9]/);
    expect(text).toMatch(/cas_mail_logins_total\{protocol="Imap4",outcome="unknown_user"\} [1-9]/);
    expect(text).toMatch(/cas_mail_relayed_bytes_total\{protocol="Imap4",direction="server_to_client"\} [1-9]\d{4,}/);
    const logs = w.logText();
    expect(logs).toContain('"event":"login"');
    for (const u of Object.values(USERS)) {
      expect(logs).not.toContain(u.password);
      expect(logs).not.toContain(JSON.stringify(u.password).slice(1, -1));
    }
    expect(logs).not.toContain(Buffer.from(`\0${USERS.bob.user}\0${USERS.bob.password}`).toString("base64"));
  });
});
