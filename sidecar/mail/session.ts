// What a POP3 or IMAP4 session needs from the proxy around it.
import type { Logger } from "pino";
import type { SecureContext } from "node:tls";
import type { MailLimits, MailListener, MailPolicy } from "./config.js";
import type { LineConnection } from "./connection.js";
import type { MailLogin } from "./login.js";
import type { MailMetrics } from "./metrics.js";
import { relay } from "./relay.js";
import type { LoginResult } from "./login.js";

export interface SessionContext {
  readonly conn: LineConnection;
  readonly listener: MailListener;
  readonly limits: MailLimits;
  readonly policy: MailPolicy;
  /** Present when the proxy has a certificate (STARTTLS/STLS possible). */
  readonly secureContext?: SecureContext;
  readonly login: MailLogin;
  readonly metrics: MailMetrics;
  readonly log: Logger;
  readonly sourceAddress?: string;
  /** Front-door host for a connection, given the TLS SNI if any. */
  frontDoorHost(servername?: string): string;
}

/** Whether the connection counts as encrypted: TLS here, or TLS terminated by Envoy in front. */
export function isSecure(ctx: SessionContext): boolean {
  return ctx.conn.tls || ctx.listener.tlsTerminatedByEnvoy;
}

export function plaintextAuthAllowed(ctx: SessionContext): boolean {
  return !ctx.policy.requireTlsForAuth || isSecure(ctx);
}

export function starttlsAvailable(ctx: SessionContext): boolean {
  return ctx.policy.starttls && ctx.secureContext !== undefined && !isSecure(ctx);
}

/** Hand the client over to the logged-in mailbox server connection and relay until either closes. */
export async function handOver(ctx: SessionContext, res: Extract<LoginResult, { ok: true }>): Promise<void> {
  const { socket, leftover } = ctx.conn.release();
  const protocol = ctx.listener.protocol;
  const r = await relay(socket, leftover, res.socket, res.leftover);
  ctx.metrics.bytes.inc({ protocol, direction: "client_to_server" }, r.clientToServer);
  ctx.metrics.bytes.inc({ protocol, direction: "server_to_client" }, r.serverToClient);
  ctx.log.info({ event: "closed", bytesUp: r.clientToServer, bytesDown: r.serverToClient }, "mail session ended");
}
