// The proxy's side towards the mailbox server: connect (plain, implicit TLS or STARTTLS/STLS as the
// target's internalConnectionSettings say), replay the client's authentication, and hand back the
// logged-in stream with the server's answer so it can be reported to the client faithfully.
import { createConnection, isIP, type NetConnectOpts } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { LineConnection, ReadError, secureConnected } from "./connection.js";
import { imapString } from "./imap-syntax.js";
import { connectReusingBuffer } from "./reused-buffer.js";
import { encodePlain, type Credentials } from "./sasl.js";

export interface BackendTarget {
  readonly host: string;
  readonly port: number;
  readonly encryption: "None" | "Ssl" | "Tls";
  /** Validate the server certificate (off only for ClientAccessServer.tls.insecureSkipVerify, R-GEN-3). */
  readonly verify: boolean;
  /** Extra trusted CA certificates (PEM), besides the system store. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * Tell the mailbox server who the client is before logging in (IMAP `ID ("x-originating-ip" …)`,
   * POP3 `XCLIENT ADDR=`); servers honour it only from trusted networks (Dovecot login_trusted_networks).
   */
  readonly clientAddress?: string;
}

const IP_RE = /^[0-9a-fA-F.:]{2,45}$/;

export type BackendLogin =
  | {
      readonly ok: true;
      readonly socket: Duplex;
      readonly leftover: Buffer;
      /** IMAP: untagged lines to pass on before the tagged OK (CAPABILITY). POP3: none. */
      readonly untagged: readonly string[];
      /** IMAP: the tagged OK's text after "OK " (response code included). POP3: the text after "+OK". */
      readonly text: string;
    }
  | {
      readonly ok: false;
      /** auth: the server said no to the credentials; unavailable: could not connect or talk to it. */
      readonly kind: "auth" | "unavailable";
      /** What the server said (auth), or why it could not be reached (unavailable; for logs only). */
      readonly text: string;
    };

const MAX_BACKEND_LINE = 64 * 1024;
/** Stream buffer size for the relay: a whole 64 KiB socket read fits without pausing the reader. */
export const RELAY_HIGH_WATER_MARK = 256 * 1024;

function tlsOptions(t: BackendTarget): ConnectionOptions {
  return {
    host: t.host,
    port: t.port,
    rejectUnauthorized: t.verify,
    // SNI takes host names only; an IP address is still checked against the certificate's IP SANs.
    ...(isIP(t.host) ? {} : { servername: t.host }),
    ...(t.ca ? { ca: t.ca as ConnectionOptions["ca"] } : {}),
  };
}

async function open(t: BackendTarget, timeoutMs: number): Promise<LineConnection> {
  const deadline = Date.now() + timeoutMs;
  const limits = { maxLineLength: MAX_BACKEND_LINE, idleMs: timeoutMs, deadline };
  if (t.encryption === "Ssl") {
    // highWaterMark is passed on to the stream (Node >= 20.1); the typings do not list it.
    const s = tlsConnect({ ...tlsOptions(t), highWaterMark: RELAY_HIGH_WATER_MARK } as ConnectionOptions);
    s.on("error", () => undefined);
    await secureConnected(s, timeoutMs);
    return new LineConnection(s, limits);
  }
  // In the clear, the connection reads into a reused buffer (the relay's fast path); for STARTTLS
  // the TLS layer takes the socket over, so it stays an ordinary one.
  const s =
    t.encryption === "None"
      ? connectReusingBuffer({ host: t.host, port: t.port })
      : createConnection({ host: t.host, port: t.port, highWaterMark: RELAY_HIGH_WATER_MARK } as NetConnectOpts);
  s.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("connect timed out"));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return new LineConnection(s, limits);
}

/** The client went away or hit a limit: the mailbox server connection is closed at once (its pending read fails). */
function abandonOnAbort(c: LineConnection, signal: AbortSignal | undefined): void {
  if (!signal) return;
  if (signal.aborted) c.destroy();
  else signal.addEventListener("abort", () => c.destroy(), { once: true });
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ---------------------------------------------------------------- IMAP4

interface ImapReply {
  readonly untagged: string[];
  readonly status: "OK" | "NO" | "BAD";
  readonly text: string;
}

async function imapReply(c: LineConnection, tag: string, onContinue?: () => void): Promise<ImapReply> {
  const untagged: string[] = [];
  for (;;) {
    const line = (await c.readLine()).toString("utf8");
    if (line.startsWith("* ")) {
      untagged.push(line);
      continue;
    }
    if (line.startsWith("+")) {
      if (onContinue) onContinue();
      else c.write("*\r\n"); // an unexpected challenge: cancel it
      continue;
    }
    const m = /^(\S+) (OK|NO|BAD)(?: (.*))?$/i.exec(line);
    if (m && m[1] === tag) return { untagged, status: m[2].toUpperCase() as ImapReply["status"], text: m[3] ?? "" };
    if (!m) throw new Error(`unexpected IMAP line from mailbox server: ${line.slice(0, 80)}`);
  }
}

/** Wait for a continuation request; a tagged answer instead means the command already failed. */
async function imapContinue(c: LineConnection, tag: string): Promise<ImapReply | undefined> {
  for (;;) {
    const line = (await c.readLine()).toString("utf8");
    if (line.startsWith("+")) return undefined;
    if (line.startsWith("* ")) continue;
    const m = /^(\S+) (OK|NO|BAD)(?: (.*))?$/i.exec(line);
    if (m && m[1] === tag) return { untagged: [], status: m[2].toUpperCase() as ImapReply["status"], text: m[3] ?? "" };
    throw new Error(`unexpected IMAP line from mailbox server: ${line.slice(0, 80)}`);
  }
}

function capsFrom(text: string): Set<string> | undefined {
  const m = /\[CAPABILITY ([^\]]*)\]/i.exec(text);
  return m ? new Set(m[1].toUpperCase().split(/\s+/)) : undefined;
}

function capsFromUntagged(lines: readonly string[]): Set<string> | undefined {
  const l = lines.find((x) => /^\* CAPABILITY /i.test(x));
  return l ? new Set(l.slice(13).toUpperCase().split(/\s+/)) : undefined;
}

export async function imapBackendLogin(t: BackendTarget, creds: Credentials, timeoutMs: number, signal?: AbortSignal): Promise<BackendLogin> {
  let c: LineConnection | undefined;
  try {
    c = await open(t, timeoutMs);
    abandonOnAbort(c, signal);
    const greeting = (await c.readLine()).toString("utf8");
    if (!/^\* OK\b/i.test(greeting)) {
      c.destroy();
      return { ok: false, kind: "unavailable", text: `mailbox server greeting: ${greeting.slice(0, 80)}` };
    }
    let caps = capsFrom(greeting);
    if (t.encryption === "Tls") {
      c.write("c1 STARTTLS\r\n");
      const r = await imapReply(c, "c1");
      if (r.status !== "OK") throw new Error(`mailbox server refused STARTTLS: ${r.text}`);
      await c.upgradeToClientTls(tlsOptions(t));
      caps = undefined; // capabilities before TLS are not to be trusted
    }
    if (!caps) {
      c.write("c2 CAPABILITY\r\n");
      const r = await imapReply(c, "c2");
      caps = capsFromUntagged(r.untagged) ?? new Set();
    }
    if (t.clientAddress && IP_RE.test(t.clientAddress) && caps.has("ID")) {
      c.write(`c0 ID ("x-originating-ip" "${t.clientAddress}")\r\n`);
      await imapReply(c, "c0"); // informational: a refusal does not stop the login
    }
    let reply: ImapReply;
    const conn = c;
    if (caps.has("AUTH=PLAIN")) {
      const plain = encodePlain(creds);
      if (caps.has("SASL-IR")) {
        conn.write(`c3 AUTHENTICATE PLAIN ${plain}\r\n`);
        reply = await imapReply(conn, "c3");
      } else {
        let sent = false;
        conn.write("c3 AUTHENTICATE PLAIN\r\n");
        reply = await imapReply(conn, "c3", () => {
          conn.write(sent ? "*\r\n" : `${plain}\r\n`);
          sent = true;
        });
      }
    } else if (!caps.has("LOGINDISABLED")) {
      const lp = caps.has("LITERAL+");
      const u = imapString(creds.user, lp);
      const p = imapString(creds.password, lp);
      // LOGIN with literals where needed; without LITERAL+, each literal waits for the server's "+".
      let out = "c3 LOGIN ";
      let early: ImapReply | undefined;
      for (const [i, a] of [u, p].entries()) {
        const sep = i === 0 ? "" : " ";
        if (!a.literal) {
          out += sep + a.text;
          continue;
        }
        conn.write(`${out}${sep}${a.text}\r\n`);
        out = "";
        if (!lp) {
          early = await imapContinue(conn, "c3");
          if (early) break;
        }
        conn.write(a.literal);
      }
      if (!early) conn.write(`${out}\r\n`);
      reply = early ?? (await imapReply(conn, "c3"));
    } else {
      conn.destroy();
      return { ok: false, kind: "unavailable", text: "mailbox server offers neither AUTH=PLAIN nor LOGIN" };
    }
    if (reply.status !== "OK") {
      conn.destroy();
      return { ok: false, kind: "auth", text: reply.text };
    }
    const untagged = reply.untagged.filter((l) => /^\* (CAPABILITY|OK|NO) /i.test(l));
    if (!capsFrom(reply.text) && !capsFromUntagged(untagged)) {
      // The client needs the post-login capabilities; ask for them and pass them on untagged.
      conn.write("c4 CAPABILITY\r\n");
      const r = await imapReply(conn, "c4");
      const line = r.untagged.find((l) => /^\* CAPABILITY /i.test(l));
      if (line) untagged.push(line);
    }
    const { socket, leftover } = conn.release();
    return { ok: true, socket, leftover, untagged, text: reply.text };
  } catch (err) {
    c?.destroy();
    return { ok: false, kind: "unavailable", text: err instanceof ReadError ? `mailbox server: ${err.reason}` : describe(err) };
  }
}

// ---------------------------------------------------------------- POP3

async function pop3Line(c: LineConnection): Promise<{ ok: boolean; cont: boolean; text: string }> {
  const line = (await c.readLine()).toString("utf8");
  if (line.startsWith("+OK")) return { ok: true, cont: false, text: line.slice(3).trimStart() };
  if (line.startsWith("-ERR")) return { ok: false, cont: false, text: line.slice(4).trimStart() };
  if (line.startsWith("+")) return { ok: false, cont: true, text: line.slice(1).trimStart() };
  throw new Error(`unexpected POP3 line from mailbox server: ${line.slice(0, 80)}`);
}

export async function pop3BackendLogin(t: BackendTarget, creds: Credentials, timeoutMs: number, signal?: AbortSignal): Promise<BackendLogin> {
  let c: LineConnection | undefined;
  try {
    c = await open(t, timeoutMs);
    abandonOnAbort(c, signal);
    const greeting = await pop3Line(c);
    if (!greeting.ok) {
      c.destroy();
      return { ok: false, kind: "unavailable", text: `mailbox server greeting: -ERR ${greeting.text.slice(0, 80)}` };
    }
    if (t.encryption === "Tls") {
      c.write("STLS\r\n");
      const r = await pop3Line(c);
      if (!r.ok) throw new Error(`mailbox server refused STLS: ${r.text}`);
      await c.upgradeToClientTls(tlsOptions(t));
    }
    if (t.clientAddress && IP_RE.test(t.clientAddress)) {
      c.write(`XCLIENT ADDR=${t.clientAddress}\r\n`);
      await pop3Line(c); // -ERR from an untrusting server is fine
    }
    let r: { ok: boolean; cont: boolean; text: string };
    if (creds.mechanism === "USER" && !creds.authzid) {
      c.write(`USER ${creds.user}\r\n`);
      r = await pop3Line(c);
      if (r.ok) {
        c.write(`PASS ${creds.password}\r\n`);
        r = await pop3Line(c);
      }
    } else {
      // PLAIN with an initial response (RFC 5034); a server that wants it separately gets it after "+".
      const plain = encodePlain(creds);
      c.write(`AUTH PLAIN ${plain}\r\n`);
      r = await pop3Line(c);
      if (r.cont) {
        c.write(`${plain}\r\n`);
        r = await pop3Line(c);
      }
    }
    if (!r.ok) {
      c.destroy();
      return { ok: false, kind: "auth", text: r.text };
    }
    const { socket, leftover } = c.release();
    return { ok: true, socket, leftover, untagged: [], text: r.text };
  } catch (err) {
    c?.destroy();
    return { ok: false, kind: "unavailable", text: err instanceof ReadError ? `mailbox server: ${err.reason}` : describe(err) };
  }
}
