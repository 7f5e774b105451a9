// POP3 (RFC 1939) in the AUTHORIZATION state: CAPA (RFC 2449), STLS (RFC 2595), USER/PASS,
// AUTH PLAIN/LOGIN (RFC 5034, with initial response), QUIT. After a successful login the client is
// relayed to the mailbox server, which is then in its TRANSACTION state.
import { ReadError, type PreAuthLimit } from "./connection.js";
import { TEXT_AUTH_FAILED } from "./login.js";
import { LOGIN_PROMPT_PASS, LOGIN_PROMPT_USER, decodeBase64, parsePlain, type Credentials } from "./sasl.js";
import { handOver, isSecure, plaintextAuthAllowed, starttlsAvailable, type SessionContext } from "./session.js";
import { TLSSocket } from "node:tls";

class Cancelled extends Error {}

/** RFC 3206 / RFC 2449 extended response codes. */
// RFC 3206: SYS/TEMP tells the client to try again later; SYS/PERM that retrying will not help.
const POP3_CODE = { AUTHENTICATIONFAILED: "AUTH", UNAVAILABLE: "SYS/TEMP", CONTACTADMIN: "SYS/PERM", NOPERM: "SYS/PERM", CANNOT: "SYS/PERM" } as const;

export class Pop3Session {
  private failures = 0;
  private bad = 0;
  private user: string | undefined;
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

  private send(line: string): void {
    this.ctx.conn.write(`${line}\r\n`);
  }

  private close(text: string, limit?: string): void {
    if (limit) this.ctx.metrics.limits.inc({ protocol: "Pop3", limit });
    this.ctx.log.info({ event: "close", limit }, text);
    this.ctx.conn.endWith(`-ERR ${text}\r\n`);
  }

  capabilities(): string[] {
    const caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
    if (starttlsAvailable(this.ctx)) caps.push("STLS");
    if (plaintextAuthAllowed(this.ctx)) caps.push("USER", "SASL PLAIN LOGIN");
    caps.push("IMPLEMENTATION cas-gateway");
    return caps;
  }

  /** Bytes or time before authentication ran out, whatever the session was doing (e.g. waiting for the mailbox server). */
  private limitReached(limit: PreAuthLimit): void {
    this.limited = true;
    this.abandon.abort();
    if (limit === "deadline") this.close("Authentication took too long.", "deadline");
    else this.close("Too much data sent before authentication.", limit);
  }

  async run(): Promise<void> {
    this.ctx.conn.guardPreAuth((limit) => this.limitReached(limit), this.ctx.limits.maxPreAuthBytes);
    this.send(`+OK ${this.ctx.policy.greeting}`);
    for (;;) {
      if (this.limited) return;
      let line: string;
      try {
        line = (await this.ctx.conn.readLine()).toString("utf8");
      } catch (err) {
        return this.readFailed(err);
      }
      const sp = line.indexOf(" ");
      const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? "" : line.slice(sp + 1);
      try {
        if ((await this.command(verb, arg)) === "done") return;
      } catch (err) {
        if (err instanceof Cancelled) {
          this.send("-ERR Authentication cancelled.");
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
          return this.close("Idle for too long.", "idle");
        case "deadline":
          return this.close("Authentication took too long.", "deadline");
        case "too-long":
          return this.close("Line too long.", "line");
      }
    }
    this.ctx.log.warn({ err }, "POP3 session failed");
    this.ctx.conn.destroy();
  }

  private badCommand(text: string): "done" | "continue" {
    if (++this.bad >= this.ctx.limits.maxBadCommands) {
      this.close("Too many invalid commands.", "bad_commands");
      return "done";
    }
    this.send(`-ERR ${text}`);
    return "continue";
  }

  private authFailed(text: string): "done" | "continue" {
    if (++this.failures >= this.ctx.limits.maxAuthFailures) {
      this.ctx.metrics.limits.inc({ protocol: "Pop3", limit: "auth_failures" });
      this.ctx.conn.endWith(`-ERR ${text}\r\n`);
      return "done";
    }
    this.send(`-ERR ${text}`);
    return "continue";
  }

  private async command(verb: string, arg: string): Promise<"done" | "continue"> {
    switch (verb) {
      case "CAPA":
        this.send("+OK Capability list follows");
        for (const c of this.capabilities()) this.send(c);
        this.send(".");
        return "continue";
      case "QUIT":
        this.ctx.conn.endWith("+OK Logging out.\r\n");
        return "done";
      case "NOOP":
        return this.badCommand("Not logged in.");
      case "STLS":
        return this.stls();
      case "USER":
        if (!plaintextAuthAllowed(this.ctx)) return this.authFailed("[AUTH] Plaintext authentication is disabled until STLS.");
        if (!arg) return this.badCommand("USER expects a user name.");
        this.user = arg;
        this.send("+OK");
        return "continue";
      case "PASS": {
        if (this.user === undefined) return this.badCommand("Give USER first.");
        const user = this.user;
        this.user = undefined;
        if (!arg) return this.authFailed(`[AUTH] ${TEXT_AUTH_FAILED}`);
        return this.login({ authzid: "", user, password: arg, mechanism: "USER" });
      }
      case "AUTH":
        return this.auth(arg);
      case "APOP":
        return this.badCommand("APOP is not supported.");
      default:
        return this.badCommand(/^[A-Z]{1,10}$/.test(verb) ? "Command not allowed before authentication." : "Unknown command.");
    }
  }

  private async stls(): Promise<"done" | "continue"> {
    if (!starttlsAvailable(this.ctx) || !this.ctx.secureContext) {
      return this.badCommand(isSecure(this.ctx) ? "TLS is already active." : "STLS is not available.");
    }
    this.send("+OK Begin TLS negotiation now.");
    try {
      const r = await this.ctx.conn.upgradeToServerTls(this.ctx.secureContext);
      if (r.droppedBytes) this.ctx.log.warn({ event: "starttls-injection", bytes: r.droppedBytes }, "dropped plaintext sent after STLS");
      if (r.servername) this.sni = r.servername;
      this.user = undefined;
      return "continue";
    } catch (err) {
      this.ctx.log.info({ event: "starttls-failed", err: String(err) }, "TLS negotiation failed");
      this.ctx.conn.destroy();
      return "done";
    }
  }

  private async saslResponse(challenge: string): Promise<Buffer | undefined> {
    this.send(`+ ${challenge}`);
    const line = (await this.ctx.conn.readLine()).toString("latin1");
    if (line.trim() === "*") throw new Cancelled();
    return decodeBase64(line);
  }

  private async auth(arg: string): Promise<"done" | "continue"> {
    const [mechRaw, ir] = arg.split(" ");
    const mech = mechRaw?.toUpperCase() ?? "";
    if (!mech) {
      // RFC 1734 style: list the mechanisms.
      this.send("+OK");
      if (plaintextAuthAllowed(this.ctx)) {
        this.send("PLAIN");
        this.send("LOGIN");
      }
      this.send(".");
      return "continue";
    }
    if (mech !== "PLAIN" && mech !== "LOGIN") return this.badCommand("Unsupported authentication mechanism.");
    if (!plaintextAuthAllowed(this.ctx)) return this.authFailed("[AUTH] Plaintext authentication is disabled until STLS.");
    const initial = () => (ir === "=" ? Buffer.alloc(0) : ir === undefined ? undefined : decodeBase64(ir));
    let creds: Credentials | undefined;
    if (mech === "PLAIN") {
      const msg = ir !== undefined ? initial() : await this.saslResponse("");
      if (msg === undefined) return this.badCommand("Invalid base64 data.");
      creds = parsePlain(msg);
    } else {
      const u = ir !== undefined ? initial() : await this.saslResponse(LOGIN_PROMPT_USER);
      const p = u === undefined ? undefined : await this.saslResponse(LOGIN_PROMPT_PASS);
      if (u === undefined || p === undefined) return this.badCommand("Invalid base64 data.");
      if (u.length && p.length) creds = { authzid: "", user: u.toString("utf8"), password: p.toString("utf8"), mechanism: "LOGIN" };
    }
    if (!creds) return this.authFailed(`[AUTH] ${TEXT_AUTH_FAILED}`);
    return this.login(creds);
  }

  private async login(creds: Credentials): Promise<"done" | "continue"> {
    const res = await this.ctx.login.login(
      {
        protocol: "Pop3",
        host: this.ctx.frontDoorHost(this.sni),
        secure: isSecure(this.ctx),
        ...(this.ctx.sourceAddress ? { sourceAddress: this.ctx.sourceAddress } : {}),
        log: this.ctx.log,
      },
      creds,
      this.abandon.signal,
    );
    if (this.limited) {
      // Closed with -ERR while the mailbox server was answering: nothing is relayed.
      if (res.ok) res.socket.destroy();
      return "done";
    }
    this.ctx.metrics.logins.inc({ protocol: "Pop3", outcome: res.outcome });
    if (res.ok) {
      this.send(`+OK ${res.text || "Logged in."}`.trimEnd());
      await handOver(this.ctx, res);
      return "done";
    }
    return this.authFailed(res.text.startsWith("[") ? res.text : `[${POP3_CODE[res.code]}] ${res.text}`);
  }
}
