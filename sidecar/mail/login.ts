// From credentials to a logged-in mailbox server connection: look the user up in the directory,
// let the decision engine choose the target (R-POP-1..5, R-GEN-2, health), connect to the target's
// internalConnectionSettings and replay the authentication there.
import type { Logger } from "pino";
import type { Topology } from "../../model/topology/types.js";
import type { HealthView } from "../../model/health.js";
import type { ClientRequest, Decision, RouteDecision } from "../decision/types.js";
import { directoryDeadlineMs, resolveIdentities, type DirectoryView, type MailboxDirectory } from "../../model/directory/types.js";
import type { StateSource } from "../../model/state.js";
import { imapBackendLogin, pop3BackendLogin, type BackendLogin, type BackendTarget } from "./backend.js";
import type { MailProtocol } from "./config.js";
import type { LoginOutcome } from "./metrics.js";
import { mailboxIdentity, type Credentials } from "./sasl.js";

/** sidecar/decision/engine.ts `decide`. */
export type DecideFn = (
  req: ClientRequest,
  topology: Topology,
  directory: DirectoryView,
  health: HealthView,
  options?: { defaultSite?: string },
) => Decision;

/** sidecar/decision/identity.ts `identityCandidates`. */
export type IdentityCandidatesFn = (req: ClientRequest) => readonly { readonly value: string }[];

export interface MailLoginDeps {
  readonly state: StateSource;
  readonly directory: MailboxDirectory;
  readonly decide: DecideFn;
  readonly identityCandidates?: IdentityCandidatesFn;
  readonly defaultSite?: string;
  /** Deadline of the directory look-up (default DEFAULT_MAIL_LOOKUP_TIMEOUT_MS). */
  readonly lookupTimeoutMs?: number;
  /** Directory down or too slow: the engine sees `unavailable` (fail-closed, the default) or `not-found` (local). */
  readonly directoryFailurePolicy?: "fail-closed" | "local";
  /** Extra CA certificates trusted for mailbox servers' TLS (PEM). */
  readonly backendCa?: string | Buffer;
  readonly backendTimeoutMs: number;
  /** Pass the client's address to the mailbox server before logging in (see BackendTarget.clientAddress). */
  readonly forwardClientAddress?: boolean;
}

export interface LoginContext {
  readonly protocol: MailProtocol;
  /** Front-door host (listener setting or TLS SNI). */
  readonly host: string;
  readonly secure: boolean;
  readonly sourceAddress?: string;
  readonly log: Logger;
}

export type LoginResult =
  | (Extract<BackendLogin, { ok: true }> & { readonly outcome: "local" | "proxy"; readonly decision: RouteDecision })
  | {
      readonly ok: false;
      readonly outcome: Exclude<LoginOutcome, "local" | "proxy">;
      /** Text for the client: short, no internal host names. */
      readonly text: string;
      /** IMAP response code / POP3 extended code family. */
      readonly code: RefusalCode;
    };

/**
 * RFC 5530 response codes (POP3: RFC 3206 [SYS/TEMP] for UNAVAILABLE, [SYS/PERM] for the other
 * refusals, [AUTH] for AUTHENTICATIONFAILED). Only UNAVAILABLE tells a client to try again.
 */
export type RefusalCode = "AUTHENTICATIONFAILED" | "UNAVAILABLE" | "CONTACTADMIN" | "NOPERM" | "CANNOT";

/**
 * The code for an engine refusal. Only an outage is temporary: 503 (no healthy server, directory
 * unreachable) and 504. Everything else stays true until an administrator changes something: a
 * rule refusal (403: NOPERM), a mailbox this gateway has no server for or cannot reach securely
 * (502, 404, 500: CONTACTADMIN). NTLM, which the proxy can never pass on, is CANNOT.
 */
export function refusalCode(status: number, mechanism: string): Exclude<RefusalCode, "AUTHENTICATIONFAILED"> {
  if (mechanism.toUpperCase() === "NTLM") return "CANNOT";
  if (status === 503 || status === 504) return "UNAVAILABLE";
  return status === 403 ? "NOPERM" : "CONTACTADMIN";
}

/** As the sidecar's --lookup-timeout-ms default. */
export const DEFAULT_MAIL_LOOKUP_TIMEOUT_MS = 150;

export const TEXT_AUTH_FAILED = "Authentication failed.";
export const TEXT_UNAVAILABLE = "The mailbox server is not available. Try again later.";
export const TEXT_NOT_READY = "The gateway is starting. Try again later.";

export class MailLogin {
  constructor(private readonly deps: MailLoginDeps) {}

  /** Decide where the user's mailbox is; an error decision (R-POP-4, no healthy target, ...) comes back as a refusal. */
  async route(
    ctx: LoginContext,
    user: string,
    mechanism: string,
  ): Promise<{ ok: true; decision: RouteDecision; topology: Topology; unknownUser: boolean } | Extract<LoginResult, { ok: false }>> {
    const state = this.deps.state.current();
    if (!state) return { ok: false, outcome: "not_ready", text: TEXT_NOT_READY, code: "UNAVAILABLE" };
    const req: ClientRequest = {
      method: "LOGIN",
      host: ctx.host,
      path: "/",
      scheme: ctx.secure ? "https" : "http",
      headers: {},
      ...(ctx.sourceAddress ? { sourceAddress: ctx.sourceAddress } : {}),
      mail: { protocol: ctx.protocol, user, mechanism },
    };
    const found = this.deps.identityCandidates?.(req).map((c) => c.value) ?? [];
    const ids = found.length ? found : [user];
    const view = await this.lookup(ids);
    // An unknown user is not refused here: like the engine says (R-ENG-UNKNOWN-MAILBOX), the
    // receiving site's server answers, so the reply (and its timing) is that of a wrong password.
    const unknownUser = ids.every((id) => view.find(id).status === "not-found");
    let decision: Decision;
    try {
      decision = this.deps.decide(req, state.topology, view, state.health, { defaultSite: this.deps.defaultSite });
    } catch (err) {
      ctx.log.error({ err }, "decision engine failed");
      return { ok: false, outcome: "refused", text: "The gateway could not route this login.", code: "UNAVAILABLE" };
    }
    ctx.log.info(
      { event: "decision", outcome: decision.outcome, rules: decision.rules, targetSite: "targetSite" in decision ? decision.targetSite : undefined },
      "mail login decided",
    );
    if (decision.outcome === "error") {
      const code = refusalCode(decision.status, mechanism);
      // R-HYB-1: a mailbox in Exchange Online. IMAP4 has a login referral for exactly this (RFC 2221):
      // the NO names the server to use; POP3 has none, its -ERR [SYS/PERM] text names it.
      const text = decision.cloudHost && ctx.protocol === "Imap4" ? `[REFERRAL imap://${decision.cloudHost}/] ${decision.reason}` : decision.reason;
      return { ok: false, outcome: code === "UNAVAILABLE" ? "backend_unavailable" : "refused", text, code };
    }
    if (decision.outcome === "redirect" || !decision.mailBackend) {
      // A configuration the gateway cannot serve over POP3/IMAP4: retrying will not change it.
      ctx.log.error({ decision: decision.outcome }, "decision for a mail login has no mail backend");
      return { ok: false, outcome: "refused", text: "The gateway could not route this login.", code: "CONTACTADMIN" };
    }
    return { ok: true, decision, topology: state.topology, unknownUser };
  }

  /** The directory's answers within the deadline; a directory down or too slow is handled by the failure policy. */
  private async lookup(ids: readonly string[]): Promise<DirectoryView> {
    const ms = this.deps.lookupTimeoutMs ?? DEFAULT_MAIL_LOOKUP_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<DirectoryView>((resolve) => {
      const reason = `directory did not answer within ${ms} ms`;
      timer = setTimeout(() => resolve({ find: () => ({ status: "unavailable", reason }) }), ms);
    });
    let view: DirectoryView;
    try {
      view = await Promise.race([resolveIdentities(this.deps.directory, ids, { deadlineMs: directoryDeadlineMs(ms) }), late]);
    } catch (err) {
      const reason = `directory look-up failed: ${err instanceof Error ? err.message : String(err)}`;
      view = { find: () => ({ status: "unavailable", reason }) };
    } finally {
      clearTimeout(timer);
    }
    if (this.deps.directoryFailurePolicy !== "local") return view;
    const answered = view;
    return { find: (id) => (answered.find(id).status === "unavailable" ? { status: "not-found" } : answered.find(id)) };
  }

  /** `signal`: abort to give up the login (the mailbox server connection is closed at once). */
  async login(ctx: LoginContext, creds: Credentials, signal?: AbortSignal): Promise<LoginResult> {
    const routed = await this.route(ctx, mailboxIdentity(creds), creds.mechanism);
    if (!routed.ok) return routed;
    const { decision, topology, unknownUser } = routed;
    const mb = decision.mailBackend!;
    const server = findMailServer(topology, decision, ctx.protocol);
    const target: BackendTarget = {
      host: mb.host,
      port: mb.port,
      encryption: mb.encryption,
      verify: !(server?.insecureSkipVerify ?? false),
      ...(this.deps.backendCa ? { ca: this.deps.backendCa } : {}),
      ...(this.deps.forwardClientAddress && ctx.sourceAddress ? { clientAddress: ctx.sourceAddress.replace(/^::ffff:/, "") } : {}),
    };
    const started = Date.now();
    const res =
      ctx.protocol === "Imap4"
        ? await imapBackendLogin(target, creds, this.deps.backendTimeoutMs, signal)
        : await pop3BackendLogin(target, creds, this.deps.backendTimeoutMs, signal);
    const where = { targetSite: decision.targetSite, targetServer: server?.name, encryption: mb.encryption, ms: Date.now() - started };
    if (res.ok) {
      ctx.log.info({ event: "login", outcome: decision.outcome, ...where }, "logged in at mailbox server");
      return { ...res, outcome: decision.outcome, decision };
    }
    if (res.kind === "auth") {
      const outcome = unknownUser ? "unknown_user" : "auth_failed";
      ctx.log.info({ event: "login", outcome, ...where }, "mailbox server refused the credentials");
      return { ok: false, outcome, text: scrub(res.text, mb.host, server?.fqdn) || TEXT_AUTH_FAILED, code: "AUTHENTICATIONFAILED" };
    }
    ctx.log.warn({ event: "login", outcome: "backend_unavailable", reason: res.text, ...where }, "mailbox server unavailable");
    return { ok: false, outcome: "backend_unavailable", text: TEXT_UNAVAILABLE, code: "UNAVAILABLE" };
  }
}

/** The server the mail backend belongs to (for its TLS settings): the decision's target, else the one whose settings match. */
function findMailServer(topology: Topology, d: RouteDecision, protocol: MailProtocol) {
  if (d.targetServer) {
    const s = topology.findServer(d.targetServer);
    if (s) return s;
  }
  const mb = d.mailBackend!;
  for (const s of topology.servers.values()) {
    const v = s.vdirs.get(protocol);
    if (v?.internalConnectionSettings.some((c) => c.hostname.toLowerCase() === mb.host.toLowerCase() && c.port === mb.port)) return s;
  }
  return undefined;
}

/**
 * The mailbox server's own words are passed on (faithful reporting), without its response-code
 * brackets' neighbours changed, but with its host names taken out.
 */
export function scrub(text: string, ...hosts: (string | undefined)[]): string {
  let t = text;
  for (const h of hosts) if (h) t = t.split(h).join("mailbox server");
  return t.replace(/[\r\n]/g, " ").slice(0, 300);
}
