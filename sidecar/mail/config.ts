// Configuration of the POP3/IMAP4 proxy: listeners, limits and the pre-authentication policy.
// Validated with zod because it comes from CLI flags and files.
import { z } from "zod";

export const MailProtocol = z.enum(["Pop3", "Imap4"]);
export type MailProtocol = z.infer<typeof MailProtocol>;

export const MailLimits = z
  .object({
    /** Longest command line accepted before authentication (bytes, CRLF included). */
    maxLineLength: z.number().int().min(64).max(1_048_576).default(8192),
    /** Longest IMAP literal accepted in LOGIN/AUTHENTICATE (bytes). */
    maxLiteralLength: z.number().int().min(64).max(1_048_576).default(8192),
    /** Close a connection that sends nothing for this long before authenticating. */
    preAuthIdleMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Close a connection that has not authenticated after this long, busy or not (slow-drip clients). */
    preAuthTotalMs: z.number().int().min(100).max(3_600_000).default(180_000),
    /**
     * Bytes a client may have sent that were not asked for yet, before and during login (e.g. while
     * the mailbox server answers the replayed login); past it the connection is closed with IMAP
     * `* BYE [LIMIT]` / POP3 `-ERR` (a literal being read may be as long as maxLiteralLength).
     */
    maxPreAuthBytes: z.number().int().min(1024).max(16 * 1_048_576).default(64 * 1024),
    /** Failed logins allowed on one connection; the next failure closes it. */
    maxAuthFailures: z.number().int().min(1).max(100).default(3),
    /** Invalid or unknown commands allowed before authentication. */
    maxBadCommands: z.number().int().min(1).max(1000).default(10),
    /** Concurrent client connections, all listeners together. */
    maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Concurrent client connections from one address (0 = no per-address limit; behind Envoy every client is Envoy). */
    maxConnectionsPerAddress: z.number().int().min(0).max(1_000_000).default(0),
    /** Connecting to, and logging in at, the mailbox server must finish within this time. */
    backendTimeoutMs: z.number().int().min(100).max(300_000).default(15_000),
  })
  .strict();
export type MailLimits = z.infer<typeof MailLimits>;

export const MailListener = z
  .object({
    protocol: MailProtocol,
    /** Loopback by default: Envoy's tcp_proxy forwards to it. */
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535),
    /** Implicit TLS (993/995 style) terminated by the proxy itself; needs the TLS certificate. */
    implicitTls: z.boolean().default(false),
    /** Envoy terminated TLS in front of this listener (993/995): treat connections as already encrypted. */
    tlsTerminatedByEnvoy: z.boolean().default(false),
    /** Front-door host name this listener stands for: the request's Host for the decision (R-GEN words: receiving site). */
    frontDoorHost: z.string().min(1).optional(),
    /** Name in logs and metrics. */
    name: z.string().min(1).optional(),
    /** Connections start with a PROXY protocol v1/v2 header (Envoy's proxy_protocol transport socket) naming the real client. */
    proxyProtocol: z.boolean().default(false),
  })
  .strict()
  .refine((l) => !(l.proxyProtocol && l.implicitTls), {
    message: "proxyProtocol cannot be combined with implicitTls (the header comes before TLS; let Envoy terminate TLS)",
    path: ["proxyProtocol"],
  });
export type MailListener = z.infer<typeof MailListener>;
export type MailListenerInput = z.input<typeof MailListener>;

export const MailPolicy = z
  .object({
    /** Offer STARTTLS/STLS (needs the TLS certificate). */
    starttls: z.boolean().default(true),
    /**
     * Refuse plaintext authentication before TLS (IMAP LOGINDISABLED, no AUTH=; POP3 no USER/SASL
     * until STLS). Listeners behind Envoy's TLS terminator set `tlsTerminatedByEnvoy`.
     */
    requireTlsForAuth: z.boolean().default(false),
    /** Advertise AUTH=NTLM (IMAP): the proxy cannot relay NTLM, but runs the exchange to name the user and refuse clearly (R-POP-4). */
    advertiseNtlm: z.boolean().default(false),
    /** Greeting text (never an internal host name). */
    greeting: z.string().min(1).max(200).default("cas-gateway ready."),
  })
  .strict();
export type MailPolicy = z.infer<typeof MailPolicy>;

export const MailTlsFiles = z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).strict();
