// Large messages through the proxy's relay fast path (plain-TCP mailbox connection read into pooled,
// reused buffers, sidecar/mail/reused-buffer.ts), with real Dovecot and real clients: every byte
// arrives, over a plain and an implicit-TLS client connection, for IMAP4 and POP3.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dovecotAvailable } from "./dovecot.js";
import { USERS, makeMessage, pyClient, run, sha256, startMailWorld, type MailWorld } from "./fixture.js";

describe.skipIf(!dovecotAvailable())("bulk transfer through the mail proxy", () => {
  let w: MailWorld;
  beforeAll(async () => {
    // Larger than the relay's biggest read buffer (1 MiB), so buffers change size and are reused.
    w = await startMailWorld({ messages: { alice: [makeMessage(1, 3_500_000), makeMessage(2, 200), makeMessage(3, 1_200_000)] } });
  });
  afterAll(async () => {
    await w?.stop();
  });
  const aliceMail = () => w.east.maildirMessages(USERS.alice.user).map(sha256);

  it("IMAP4 (imaplib) over a plain client connection: every message intact", async () => {
    const r = await pyClient("imap", w.ports.imap, "plain", USERS.alice.user, USERS.alice.password);
    expect(r.error).toBeUndefined();
    expect(r.sha256).toEqual(aliceMail());
  });

  it("POP3 (poplib) over the implicit-TLS listener: every message intact", async () => {
    const r = await pyClient("pop3", w.ports.pop3s, "ssl", USERS.alice.user, USERS.alice.password, w.certs.caFile);
    expect(r.error).toBeUndefined();
    expect(r.sha256).toEqual(aliceMail());
  });

  it("curl, several messages over one connection: each one intact", async () => {
    const r = await run("curl", ["-sS", "--max-time", "60", "-u", `${USERS.alice.user}:${USERS.alice.password}`, `imap://127.0.0.1:${w.ports.imap}/INBOX/;MAILINDEX=[1-3]`]);
    expect(r.stderr).toBe("");
    expect(sha256(Buffer.from(r.stdout, "latin1"))).toBe(sha256(Buffer.concat(w.east.maildirMessages(USERS.alice.user))));
  });
});
