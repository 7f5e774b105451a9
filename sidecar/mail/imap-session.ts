// IMAP4rev1 (RFC 3501) up to authentication: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), STARTTLS,
// LOGIN, AUTHENTICATE PLAIN/LOGIN (with SASL-IR, RFC 4959) and NTLM (only to name the user and
// refuse, R-POP-4). After a successful login the client is relayed to the mailbox server.
import { TLSSocket } from "node:tls";
import { ReadError, type PreAuthLimit } from "./connection.js";
import { astring, readImapCommand, type ImapCommand } from "./imap-syntax.js";
import { TEXT_AUTH_FAILED } from "./login.js";
import {
  LOGIN_PROMPT_PASS,
  LOGIN_PROMPT_USER,
  decodeBase64,
  ntlmChallenge,
  ntlmIdentity,
  parsePlain,
  type Credentials,
} from "./sasl.js";
import { handOver, isSecure, plaintextAuthAllowed, starttlsAvailable, type SessionContext } from "./session.js";

class Cancelled extends Error {}

export class ImapSession {
  private failures = 0;
  private bad = 0;
  private sni: string | undefined;
  /** Set once a pre-authentication limit closed the connection: a login still running is abandoned. */
  private limited = false;
  private readonly abandon = new AbortController();

  constructor(private readonly ctx: SessionContext) {
    const s = ctx.conn.socket;
    if (s instanceof TLSSocket) {
      const name = (s as TLSSocket & { servername?: string | false }).servername;
      if (typeof name === "string" && name) this.sni = name;
    }
  }

  private get protocol() {
    return "Imap4" as const;
  }

  capabilities(): string {
    const caps = ["IMAP4rev1", "SASL-IR", "ID", "LITERAL+"];
    if (starttlsAvailable(this.ctx)) caps.push("STARTTLS");
    if (plaintextAuthAllowed(this.ctx)) caps.push("AUTH=PLAIN", "AUTH=LOGIN");
    else caps.push("LOGINDISABLED");
    if (this.ctx.policy.advertiseNtlm) caps.push("AUTH=NTLM");
    return caps.join(" ");
  }

  private send(line: string): void {
    this.ctx.conn.write(`${line}\r\n`);
  }

  private bye(text: string, limit?: string): void {
    if (limit) this.ctx.metrics.limits.inc({ protocol: this.protocol, limit });
    this.ctx.log.info({ event: "bye", limit }, text);
    this.ctx.conn.endWith(`* BYE ${text}\r\n`);
  }

  /** Bytes or time before authentication ran out, whatever the session was doing (e.g. waiting for the mailbox server). */
  private limitReached(limit: PreAuthLimit): void {
    this.limited = true;
    this.abandon.abort();
    if (limit === "deadline") this.bye("Autologout; authentication took too long.", "deadline");
    else this.bye("[LIMIT] Too much data sent before authentication.", limit);
  }

  async run(): Promise<void> {
    this.ctx.conn.guardPreAuth((limit) => this.limitReached(limit), this.ctx.limits.maxPreAuthBytes);
    this.send(`* OK [CAPABILITY ${this.capabilities()}] ${this.ctx.policy.greeting}`);
    for (;;) {
      if (this.limited) return;
      let cmd: ImapCommand;
      try {
        cmd = await readImapCommand(this.ctx.conn, {
          maxLiteralLength: this.ctx.limits.maxLiteralLength,
          continueLiteral: () => this.send("+ Ready for literal data"),
        });
      } catch (err) {
        return this.readFailed(err);
      }
      if (!cmd.ok) {
        if (cmd.fatal) return this.bye(cmd.text, "literal");
        this.send(`${cmd.tag ?? "*"} BAD ${cmd.code ? `[${cmd.code}] ` : ""}${cmd.text}`);
        if (this.badCommand()) return;
        continue;
      }
      try {
        const next = await this.command(cmd);
        if (next === "done") return;
      } catch (err) {
        if (err instanceof Cancelled) {
          this.send(`${cmd.tag} BAD Authentication cancelled.`);
          continue;
        }
        return this.readFailed(err);
      }
    }
  }

  private readFailed(err: unknown): void {
    if (this.limited) return this.ctx.conn.destroy();
    if (err instanceof ReadError) {
      switch (err.reason) {
        case "closed":
          this.ctx.conn.destroy();
          return;
        case "idle":
          return this.bye("Autologout; idle for too long.", "idle");
        case "deadline":
          return this.bye("Autologout; authentication took too long.", "deadline");
        case "too-long":
          return this.bye("Line too long.", "line");
      }
    }
    this.ctx.log.warn({ err }, "IMAP session failed");
    this.ctx.conn.destroy();
  }

  /** Count an invalid command; true when the limit is reached and the connection is closing. */
  private badCommand(): boolean {
    if (++this.bad < this.ctx.limits.maxBadCommands) return false;
    this.bye("Too many invalid commands.", "bad_commands");
    return true;
  }

  private async command(cmd: Extract<ImapCommand, { ok: true }>): Promise<"done" | "continue"> {
    const { tag, name, args } = cmd;
    switch (name) {
      case "CAPABILITY":
        this.send(`* CAPABILITY ${this.capabilities()}`);
        this.send(`${tag} OK Capability completed.`);
        return "continue";
      case "NOOP":
        this.send(`${tag} OK NOOP completed.`);
        return "continue";
      case "LOGOUT":
        this.send("* BYE Logging out.");
        this.ctx.conn.endWith(`${tag} OK Logout completed.\r\n`);
        return "done";
      case "ID":
        this.send('* ID ("name" "cas-gateway")');
        this.send(`${tag} OK ID completed.`);
        return "continue";
      case "STARTTLS":
        return this.starttls(tag);
      case "LOGIN": {
        const user = astring(args[0]);
        const password = astring(args[1]);
        if (user === undefined || password === undefined || args.length !== 2) {
          this.send(`${tag} BAD LOGIN expects a user name and a password.`);
          return this.badCommand() ? "done" : "continue";
        }
        if (!plaintextAuthAllowed(this.ctx)) {
          this.send(`${tag} NO [PRIVACYREQUIRED] Plaintext authentication is disabled until STARTTLS.`);
          return this.authFailed() ? "done" : "continue";
        }
        return this.login(tag, { authzid: "", user, password, mechanism: "LOGIN" });
      }
      case "AUTHENTICATE":
        return this.authenticate(tag, astring(args[0])?.toUpperCase(), astring(args[1]));
      default:
        this.send(`${tag} BAD ${/^[A-Z]+$/.test(name) ? "Command not allowed before authentication." : "Unknown command."}`);
        return this.badCommand() ? "done" : "continue";
    }
  }

  private async starttls(tag: string): Promise<"done" | "continue"> {
    if (!starttlsAvailable(this.ctx) || !this.ctx.secureContext) {
      this.send(`${tag} BAD ${isSecure(this.ctx) ? "TLS is already active." : "STARTTLS is not available."}`);
      return this.badCommand() ? "done" : "continue";
    }
    this.send(`${tag} OK Begin TLS negotiation now.`);
    try {
      const r = await this.ctx.conn.upgradeToServerTls(this.ctx.secureContext);
      if (r.droppedBytes) this.ctx.log.warn({ event: "starttls-injection", bytes: r.droppedBytes }, "dropped plaintext sent after STARTTLS");
      if (r.servername) this.sni = r.servername;
      this.ctx.log.debug({ event: "starttls" }, "TLS started");
      return "continue";
    } catch (err) {
      this.ctx.log.info({ event: "starttls-failed", err: String(err) }, "TLS negotiation failed");
      this.ctx.conn.destroy();
      return "done";
    }
  }

  /** A SASL response line: base64, "*" cancels; "=" (SASL-IR only) is the empty response. */
  private async saslResponse(challenge: string): Promise<Buffer | undefined> {
    this.send(`+ ${challenge}`);
    const line = (await this.ctx.conn.readLine()).toString("latin1");
    if (line.trim() === "*") throw new Cancelled();
    return decodeBase64(line);
  }

  private async authenticate(tag: string, mech: string | undefined, ir: string | undefined): Promise<"done" | "continue"> {
    const initial = (): Buffer | undefined => (ir === "=" ? Buffer.alloc(0) : ir === undefined ? undefined : decodeBase64(ir));
    if (mech === "PLAIN" || mech === "LOGIN") {
      if (!plaintextAuthAllowed(this.ctx)) {
        this.send(`${tag} NO [PRIVACYREQUIRED] Plaintext authentication is disabled until STARTTLS.`);
        return this.authFailed() ? "done" : "continue";
      }
      let creds: Credentials | undefined;
      if (mech === "PLAIN") {
        const msg = ir !== undefined ? initial() : await this.saslResponse("");
        if (msg === undefined) {
          this.send(`${tag} BAD Invalid base64 data.`);
          return this.badCommand() ? "done" : "continue";
        }
        creds = parsePlain(msg);
      } else {
        const u = ir !== undefined ? initial() : await this.saslResponse(LOGIN_PROMPT_USER);
        const p = u === undefined ? undefined : await this.saslResponse(LOGIN_PROMPT_PASS);
        if (u === undefined || p === undefined) {
          this.send(`${tag} BAD Invalid base64 data.`);
          return this.badCommand() ? "done" : "continue";
        }
        const user = u.toString("utf8");
        const password = p.toString("utf8");
        if (user && password) creds = { authzid: "", user, password, mechanism: "LOGIN" };
      }
      if (!creds) {
        this.send(`${tag} NO [AUTHENTICATIONFAILED] ${TEXT_AUTH_FAILED}`);
        return this.authFailed() ? "done" : "continue";
      }
      return this.login(tag, creds);
    }
    if (mech === "NTLM") return this.ntlm(tag, ir === undefined ? undefined : initial());
    this.send(`${tag} NO Unsupported authentication mechanism.`);
    return this.badCommand() ? "done" : "continue";
  }

  /**
   * NTLM cannot be relayed (the mailbox server would have to issue the challenge before the user is
   * known). The exchange is run far enough to learn the user, so the decision engine can say why:
   * R-POP-4 for another site, and a clear refusal otherwise.
   */
  private async ntlm(tag: string, type1: Buffer | undefined): Promise<"done" | "continue"> {
    const t1 = type1 ?? (await this.saslResponse(""));
    if (t1 === undefined) {
      this.send(`${tag} BAD Invalid base64 data.`);
      return this.badCommand() ? "done" : "continue";
    }
    const t3 = await this.saslResponse(ntlmChallenge().toString("base64"));
    const id = t3 ? ntlmIdentity(t3) : undefined;
    if (!id) {
      this.send(`${tag} NO [AUTHENTICATIONFAILED] Invalid NTLM message.`);
      return this.authFailed() ? "done" : "continue";
    }
    const user = id.domain ? `${id.domain}\\${id.user}` : id.user;
    const routed = await this.ctx.login.route(this.loginContext(), user, "NTLM");
    const text = routed.ok
      ? "NTLM authentication cannot be passed on by this gateway; use PLAIN or LOGIN over TLS."
      : routed.text;
    this.ctx.metrics.logins.inc({ protocol: this.protocol, outcome: routed.ok ? "refused" : routed.outcome });
    this.ctx.log.info({ event: "ntlm-refused", rules: routed.ok ? routed.decision.rules : undefined }, text);
    this.send(`${tag} NO [CANNOT] ${text}`);
    return this.authFailed() ? "done" : "continue";
  }

  private loginContext() {
    return {
      protocol: this.protocol,
      host: this.ctx.frontDoorHost(this.sni),
      secure: isSecure(this.ctx),
      ...(this.ctx.sourceAddress ? { sourceAddress: this.ctx.sourceAddress } : {}),
      log: this.ctx.log,
    };
  }

  private async login(tag: string, creds: Credentials): Promise<"done" | "continue"> {
    const res = await this.ctx.login.login(this.loginContext(), creds, this.abandon.signal);
    if (this.limited) {
      // Closed with * BYE while the mailbox server was answering: nothing is relayed.
      if (res.ok) res.socket.destroy();
      return "done";
    }
    this.ctx.metrics.logins.inc({ protocol: this.protocol, outcome: res.outcome });
    if (res.ok) {
      for (const l of res.untagged) this.send(l);
      this.send(`${tag} OK ${res.text || "Logged in."}`);
      await handOver(this.ctx, res);
      return "done";
    }
    const text = res.text.startsWith("[") ? res.text : `[${res.code}] ${res.text}`;
    this.send(`${tag} NO ${text}`);
    return this.authFailed() ? "done" : "continue";
  }

  /** Count a failed login; true when the limit is reached and the connection is closing. */
  private authFailed(): boolean {
    if (++this.failures < this.ctx.limits.maxAuthFailures) return false;
    this.bye("Too many authentication failures.", "auth_failures");
    return true;
  }
}
