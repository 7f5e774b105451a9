// `cas-gateway mail-proxy --manifests DIR --directory (FILE.csv | ldap(s)://...) --imap 127.0.0.1:1143 ...`:
// the POP3/IMAP4 proxy on its own, fed from manifest files and a CSV or LDAP mailbox directory
// (Envoy's tcp_proxy listeners forward to it, or clients use it directly), with an admin port for
// /metrics, /healthz, /readyz. SIGHUP reloads the files (an LDAP directory is live and cached).
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { z } from "zod";
import { AdminServer } from "../../operator/admin-server.js";
import { decide, identityCandidates } from "../../sidecar/decision/engine.js";
import { MailMetrics, MailProxy, type MailListenerInput } from "../../sidecar/mail/index.js";
import {
  addDirectoryFlags,
  directoryOptionsFromFlags,
  type DirectoryFlags,
  type DirectoryOptions,
} from "../../sidecar/directory/open-directory.js";
import { pino } from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { HostPort } from "../flags.js";
import { openRuntimeState } from "../runtime-state.js";
import { UsageError } from "../errors.js";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();

export const MailProxyFlags = z
  .object({
    manifests: z.string().min(1, "--manifests needs a directory").optional(),
    xds: HostPort.optional(),
    nodeId: z.string().min(1).optional(),
    directory: z.string().min(1, "--directory needs a CSV file (Get-Mailbox | Export-Csv) or an ldap(s):// URL"),
    imap: HostPort.optional(),
    pop3: HostPort.optional(),
    imaps: HostPort.optional(),
    pop3s: HostPort.optional(),
    frontDoorHost: z.string().min(1).optional(),
    defaultSite: z.string().min(1).optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    backendCa: z.string().min(1).optional(),
    starttls: z.boolean(),
    requireTlsForAuth: z.boolean().optional(),
    advertiseNtlm: z.boolean().optional(),
    tlsTerminatedByEnvoy: z.boolean().optional(),
    proxyProtocol: z.boolean().optional(),
    forwardClientAddress: z.boolean().optional(),
    maxLineLength: int(64, 1_048_576),
    preAuthIdleMs: int(100, 3_600_000),
    preAuthTotalMs: int(100, 3_600_000),
    maxAuthFailures: int(1, 100),
    maxBadCommands: int(1, 1000),
    maxConnections: int(1, 1_000_000),
    maxConnectionsPerAddress: int(0, 1_000_000),
    backendTimeoutMs: int(100, 300_000),
    down: z.array(z.string().min(1)),
    admin: HostPort,
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  })
  .refine((f) => !f.manifests !== !f.xds, { message: "give either --manifests (files) or --xds (the operator's ADS server)", path: ["manifests"] })
  .refine((f) => f.imap || f.pop3 || f.imaps || f.pop3s, { message: "give at least one of --imap, --pop3, --imaps, --pop3s", path: ["imap"] })
  .refine((f) => !f.tlsCert === !f.tlsKey, { message: "--tls-cert and --tls-key go together", path: ["tlsCert"] })
  .refine((f) => (!f.imaps && !f.pop3s) || f.tlsCert, { message: "--imaps/--pop3s need --tls-cert and --tls-key", path: ["tlsCert"] });
export type MailProxyFlags = z.infer<typeof MailProxyFlags>;

export interface RunningMailProxy {
  readonly proxy: MailProxy;
  readonly adminPort: number;
  reload(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Start the mail proxy. `directoryOptions` (LDAP connection and cache settings, from
 * directoryOptionsFromFlags) apply when `flags.directory` is an ldap(s):// URL.
 */
export async function startMailProxy(flags: MailProxyFlags, directoryOptions: DirectoryOptions = {}): Promise<RunningMailProxy> {
  const logger = pino({ level: flags.logLevel, base: { component: "mail-proxy" } });
  // Topology and health: from manifest files (health from --down), or from the operator over xDS
  // (its prober's health view, R-POP-5). The mailbox directory: the CSV (reloaded with the files)
  // or LDAP (opened once, cached).
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const runtime = await openRuntimeState({
    ...(flags.manifests ? { manifests: flags.manifests } : {}),
    ...(flags.xds ? { xds: `${flags.xds.host}:${flags.xds.port}` } : {}),
    node: { ...(flags.nodeId ? { id: flags.nodeId } : {}), idPrefix: "mail-proxy", cluster: "cas-gateway" },
    directory: flags.directory,
    down: flags.down,
    directoryOptions,
    registry,
    logger,
  });
  const { state, directory } = runtime;
  const listener = (protocol: "Imap4" | "Pop3", a: { host: string; port: number } | undefined, implicitTls: boolean, name: string) =>
    a
      ? [
          {
            protocol,
            host: a.host,
            port: a.port,
            implicitTls,
            name,
            tlsTerminatedByEnvoy: !implicitTls && (flags.tlsTerminatedByEnvoy ?? false),
            proxyProtocol: !implicitTls && (flags.proxyProtocol ?? false),
            ...(flags.frontDoorHost ? { frontDoorHost: flags.frontDoorHost } : {}),
          } satisfies MailListenerInput,
        ]
      : [];
  const limits = Object.fromEntries(
    (
      ["maxLineLength", "preAuthIdleMs", "preAuthTotalMs", "maxAuthFailures", "maxBadCommands", "maxConnections", "maxConnectionsPerAddress", "backendTimeoutMs"] as const
    )
      .filter((k) => flags[k] !== undefined)
      .map((k) => [k, flags[k]]),
  );
  const proxy = new MailProxy({
    listeners: [
      ...listener("Imap4", flags.imap, false, "imap"),
      ...listener("Pop3", flags.pop3, false, "pop3"),
      ...listener("Imap4", flags.imaps, true, "imaps"),
      ...listener("Pop3", flags.pop3s, true, "pop3s"),
    ],
    limits,
    policy: {
      starttls: flags.starttls,
      ...(flags.requireTlsForAuth !== undefined ? { requireTlsForAuth: flags.requireTlsForAuth } : {}),
      ...(flags.advertiseNtlm !== undefined ? { advertiseNtlm: flags.advertiseNtlm } : {}),
    },
    ...(flags.tlsCert && flags.tlsKey ? { tls: { certFile: flags.tlsCert, keyFile: flags.tlsKey } } : {}),
    ...(flags.backendCa ? { backendCa: readFileSync(flags.backendCa) } : {}),
    ...(flags.defaultSite ? { defaultSite: flags.defaultSite } : {}),
    ...(flags.forwardClientAddress ? { forwardClientAddress: true } : {}),
    state,
    directory,
    decide,
    identityCandidates,
    logger,
    metrics: new MailMetrics(registry),
  });
  await proxy.start();
  const admin = new AdminServer({ registry, ready: () => (state.current() ? true : "no topology yet"), host: flags.admin.host, port: flags.admin.port });
  const { port: adminPort } = await admin.start();
  logger.info({ listeners: proxy.addresses(), adminPort, topology: state.current()?.topology.version }, "mail proxy started");
  return {
    proxy,
    adminPort,
    reload: () => runtime.reload(),
    async stop() {
      await admin.stop();
      await proxy.stop();
      await runtime.stop();
      logger.flush();
    },
  };
}

export function register(program: Command): void {
  const cmd = program
    .command("mail-proxy")
    .description(
      "Run the POP3/IMAP4 proxy: speaks the protocols up to authentication, finds the mailbox, decides (R-POP-1..5) and relays to the mailbox's server",
    )
    .option("--manifests <dir>", "directory of casgateway.io manifests (ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase)")
    .option("--xds <host:port>", "instead of --manifests: topology and health from the operator's ADS server (GatewayState over xDS)")
    .option("--node-id <id>", "xDS node id (default mail-proxy-<hostname>)")
    .option("--imap <host:port>", "IMAP4 listener (STARTTLS offered when a certificate is given)")
    .option("--pop3 <host:port>", "POP3 listener (STLS offered when a certificate is given)")
    .option("--imaps <host:port>", "IMAP4 listener with implicit TLS (needs --tls-cert/--tls-key)")
    .option("--pop3s <host:port>", "POP3 listener with implicit TLS (needs --tls-cert/--tls-key)")
    .option("--front-door-host <host>", "front-door host name the listeners stand for (chooses the receiving site); TLS SNI overrides it")
    .option("--default-site <site>", "receiving site when the front-door host matches no site")
    .option("--tls-cert <file>", "the gateway's certificate (PEM) for STARTTLS/STLS and implicit TLS")
    .option("--tls-key <file>", "its private key (PEM)")
    .option("--backend-ca <file>", "extra CA certificates (PEM) trusted for mailbox servers' TLS")
    .option("--no-starttls", "do not offer STARTTLS/STLS")
    .option("--require-tls-for-auth", "refuse plaintext authentication before TLS (IMAP LOGINDISABLED)")
    .option("--advertise-ntlm", "advertise IMAP AUTH=NTLM (it is always refused; some clients then prefer it)")
    .option("--tls-terminated-by-envoy", "the plain listeners sit behind Envoy's TLS termination: count them as encrypted")
    .option("--proxy-protocol", "the plain listeners expect a PROXY protocol v1/v2 header (Envoy proxy_protocol transport socket) naming the client")
    .option("--forward-client-address", "tell mailbox servers the client's address (IMAP ID x-originating-ip, POP3 XCLIENT); they must trust the gateway")
    .option("--max-line-length <bytes>", "longest command line before authentication (default 8192)")
    .option("--pre-auth-idle-ms <ms>", "idle time allowed before authentication (default 60000)")
    .option("--pre-auth-total-ms <ms>", "total time allowed to authenticate (default 180000)")
    .option("--max-auth-failures <n>", "failed logins per connection (default 3)")
    .option("--max-bad-commands <n>", "invalid commands per connection before authentication (default 10)")
    .option("--max-connections <n>", "concurrent client connections (default 10000)")
    .option("--max-connections-per-address <n>", "concurrent connections per client address, 0 = off (default 0)")
    .option("--backend-timeout-ms <ms>", "time to connect and log in at the mailbox server (default 15000)")
    .option("--down <server[/Service]...>", "servers (or server/Service) to treat as down", [])
    .option("--admin <host:port>", "admin HTTP address (/metrics, /healthz, /readyz)", "127.0.0.1:9103")
    .option("--log-level <level>", "pino log level", "info");
  addDirectoryFlags(cmd, { required: true }).action(async (raw: Record<string, unknown>) => {
    const parsed = MailProxyFlags.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new UsageError(`--${String(i?.path[0] ?? "?").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i?.message}`);
    }
    const running = await startMailProxy(parsed.data, directoryOptionsFromFlags(raw as DirectoryFlags));
    for (const l of running.proxy.addresses()) process.stdout.write(`${l.name} on ${l.host}:${l.port}\n`);
    process.stdout.write(`admin on ${parsed.data.admin.host}:${running.adminPort}\n`);
    process.on("SIGHUP", () => void running.reload());
    const stop = () => {
      void running.stop().then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
