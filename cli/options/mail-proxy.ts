// The POP3/IMAP4 proxy's options, taken by every command that runs it (mail-proxy, standalone):
// TLS towards clients (STARTTLS/STLS, implicit TLS) and towards mailbox servers, the front door it
// stands for, policy and limits. Listener addresses belong to each command.
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { MailProxyOptions } from "../../sidecar/mail/index.js";
import { defineOptions, opt } from "./define.js";

const limit = (min: number, max: number) => opt.int(min, max).optional();

export const mailProxyOptions = defineOptions("mail proxy", {
  frontDoorHost: {
    flags: "--front-door-host <host>",
    help: "front-door host name the mail listeners stand for (chooses the receiving site); TLS SNI overrides it",
    schema: opt.text.optional(),
  },
  tlsCert: {
    flags: "--tls-cert <file>",
    help: "the gateway's certificate chain (PEM): offered with STARTTLS/STLS and on implicit-TLS mail listeners",
    schema: opt.file.optional(),
  },
  tlsKey: { flags: "--tls-key <file>", help: "the private key of --tls-cert (PEM)", schema: opt.file.optional() },
  backendCa: {
    flags: "--backend-ca <file>",
    help: "CA certificates (PEM) trusted for mailbox servers' TLS besides the system store: a private CA (no need for NODE_EXTRA_CA_CERTS)",
    schema: opt.file.optional(),
  },
  starttls: { flags: "--no-starttls", help: "do not offer STARTTLS/STLS even with a certificate", schema: z.boolean().default(true) },
  requireTlsForAuth: { flags: "--require-tls-for-auth", help: "refuse plaintext authentication before TLS (IMAP LOGINDISABLED)", schema: z.boolean().optional() },
  advertiseNtlm: { flags: "--advertise-ntlm", help: "advertise IMAP AUTH=NTLM (it is always refused; some clients then prefer it)", schema: z.boolean().optional() },
  tlsTerminatedByEnvoy: {
    flags: "--tls-terminated-by-envoy",
    help: "the plain mail listeners sit behind Envoy's TLS termination: count them as encrypted",
    schema: z.boolean().optional(),
  },
  proxyProtocol: {
    flags: "--proxy-protocol",
    help: "the plain mail listeners expect a PROXY protocol v1/v2 header (Envoy proxy_protocol transport socket) naming the client",
    schema: z.boolean().optional(),
  },
  forwardClientAddress: {
    flags: "--forward-client-address",
    help: "tell mailbox servers the client's address (IMAP ID x-originating-ip, POP3 XCLIENT); they must trust the gateway",
    schema: z.boolean().optional(),
  },
  maxLineLength: { flags: "--max-line-length <bytes>", help: "longest command line before authentication (default 8192)", schema: limit(64, 1_048_576) },
  preAuthIdleMs: { flags: "--pre-auth-idle-ms <ms>", help: "idle time allowed before authentication (default 60000)", schema: limit(100, 3_600_000) },
  preAuthTotalMs: { flags: "--pre-auth-total-ms <ms>", help: "total time allowed to authenticate (default 180000)", schema: limit(100, 3_600_000) },
  maxPreAuthBytes: {
    flags: "--max-pre-auth-bytes <bytes>",
    help: "bytes a client may send ahead before and during login; past it the connection is closed with * BYE / -ERR (default 65536)",
    schema: limit(1024, 16 * 1_048_576),
  },
  maxAuthFailures: { flags: "--max-auth-failures <n>", help: "failed logins per connection (default 3)", schema: limit(1, 100) },
  maxBadCommands: { flags: "--max-bad-commands <n>", help: "invalid commands per connection before authentication (default 10)", schema: limit(1, 1000) },
  maxConnections: { flags: "--max-connections <n>", help: "concurrent client connections (default 10000)", schema: limit(1, 1_000_000) },
  maxConnectionsPerAddress: {
    flags: "--max-connections-per-address <n>",
    help: "concurrent connections per client address, 0 = off (default 0)",
    schema: limit(0, 1_000_000),
  },
  backendTimeoutMs: { flags: "--backend-timeout-ms <ms>", help: "time to connect and log in at the mailbox server (default 15000)", schema: limit(100, 300_000) },
});

/** The cross-field rule of the group (add with .refine on the command's object). */
export const mailTlsPair = [
  (f: { tlsCert?: string | undefined; tlsKey?: string | undefined }) => !f.tlsCert === !f.tlsKey,
  { message: "--tls-cert and --tls-key go together", path: ["tlsCert"] as PropertyKey[] },
] as const;

const LIMIT_KEYS = ["maxLineLength", "preAuthIdleMs", "preAuthTotalMs", "maxPreAuthBytes", "maxAuthFailures", "maxBadCommands", "maxConnections", "maxConnectionsPerAddress", "backendTimeoutMs"] as const;
type LimitKey = (typeof LIMIT_KEYS)[number];
export type MailProxyFlagValues = Partial<z.output<z.ZodObject<typeof mailProxyOptions.shape>>>;

/** What listeners take from the flags (the last two only plain ones, not implicit-TLS ones). */
export interface ListenerSettings {
  readonly frontDoorHost?: string;
  readonly tlsTerminatedByEnvoy: boolean;
  readonly proxyProtocol: boolean;
}

/**
 * MailProxy options from the group's flags (the same for every command that runs the proxy), and
 * what its listeners take. Reads the PEM files now: "--backend-ca: ..." and the like for a file
 * that cannot be read or holds no PEM block of its kind.
 */
export function mailProxySettings(f: MailProxyFlagValues): {
  options: Pick<MailProxyOptions, "limits" | "policy" | "tls" | "backendCa" | "forwardClientAddress">;
  listener: ListenerSettings;
} {
  const limits: Partial<Record<LimitKey, number>> = {};
  for (const k of LIMIT_KEYS) if (f[k] !== undefined) limits[k] = f[k];
  return {
    options: {
      limits,
      policy: {
        starttls: f.starttls ?? true,
        ...(f.requireTlsForAuth !== undefined ? { requireTlsForAuth: f.requireTlsForAuth } : {}),
        ...(f.advertiseNtlm !== undefined ? { advertiseNtlm: f.advertiseNtlm } : {}),
      },
      ...(f.tlsCert && f.tlsKey ? { tls: { cert: readPem(f.tlsCert, "--tls-cert", "CERTIFICATE"), key: readPem(f.tlsKey, "--tls-key", "PRIVATE KEY") } } : {}),
      ...(f.backendCa ? { backendCa: readPem(f.backendCa, "--backend-ca", "CERTIFICATE") } : {}),
      ...(f.forwardClientAddress ? { forwardClientAddress: true } : {}),
    },
    listener: {
      ...(f.frontDoorHost ? { frontDoorHost: f.frontDoorHost } : {}),
      tlsTerminatedByEnvoy: f.tlsTerminatedByEnvoy ?? false,
      proxyProtocol: f.proxyProtocol ?? false,
    },
  };
}

/** A PEM file holding at least one block whose label ends with `kind` ("CERTIFICATE", "PRIVATE KEY"), or an error naming the flag. */
function readPem(file: string, flag: string, kind: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(pem.toString("latin1"))) throw new Error(`${flag}: ${file} holds no PEM ${kind.toLowerCase()}`);
  return pem;
}
