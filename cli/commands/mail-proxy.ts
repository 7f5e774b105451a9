// `cas-gateway mail-proxy --manifests DIR --directory (FILE.csv | ldap(s)://...) --imap 127.0.0.1:1143 ...`:
// the POP3/IMAP4 proxy on its own, fed from manifest files and a CSV or LDAP mailbox directory
// (Envoy's tcp_proxy listeners forward to it, or clients use it directly), with an admin port for
// /metrics, /healthz, /readyz. SIGHUP reloads the files (an LDAP directory is live and cached).
import type { Command } from "commander";
import { z } from "zod";
import { AdminServer } from "../../operator/admin-server.js";
import { decide, identityCandidates } from "../../sidecar/decision/engine.js";
import { MailMetrics, MailProxy, type MailListenerInput } from "../../sidecar/mail/index.js";
import { directoryOptionsFromFlags, type DirectoryOptions } from "../../sidecar/directory/open-directory.js";
import { pino } from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { HostPort } from "../flags.js";
import { addOptions, directoryOptions, mailProxyOptions, mailProxySettings, mailTlsPair, parseFlags, xdsClientOptions, xdsClientTls, xdsClientTlsRule } from "../options/index.js";
import { openRuntimeState } from "../runtime-state.js";

export const MailProxyFlags = z
  .object({
    manifests: z.string().min(1, "--manifests needs a directory").optional(),
    xds: HostPort.optional(),
    nodeId: z.string().min(1).optional(),
    ...directoryOptions.shape,
    ...mailProxyOptions.shape,
    ...xdsClientOptions.shape,
    imap: HostPort.optional(),
    pop3: HostPort.optional(),
    imaps: HostPort.optional(),
    pop3s: HostPort.optional(),
    defaultSite: z.string().min(1).optional(),
    down: z.array(z.string().min(1)),
    admin: HostPort,
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  })
  .refine((f) => !f.manifests !== !f.xds, { message: "give either --manifests (files) or --xds (the operator's ADS server)", path: ["manifests"] })
  .refine((f) => f.imap || f.pop3 || f.imaps || f.pop3s, { message: "give at least one of --imap, --pop3, --imaps, --pop3s", path: ["imap"] })
  .refine(...mailTlsPair)
  .refine(...xdsClientTlsRule)
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
    ...(xdsClientTls(flags) ? { xdsTls: xdsClientTls(flags) } : {}),
    node: { ...(flags.nodeId ? { id: flags.nodeId } : {}), idPrefix: "mail-proxy", cluster: "cas-gateway" },
    directory: flags.directory,
    down: flags.down,
    directoryOptions,
    registry,
    logger,
  });
  const { state, directory } = runtime;
  const mail = mailProxySettings(flags);
  const listener = (protocol: "Imap4" | "Pop3", a: { host: string; port: number } | undefined, implicitTls: boolean, name: string) =>
    a
      ? [
          {
            protocol,
            host: a.host,
            port: a.port,
            implicitTls,
            name,
            tlsTerminatedByEnvoy: !implicitTls && mail.listener.tlsTerminatedByEnvoy,
            proxyProtocol: !implicitTls && mail.listener.proxyProtocol,
            ...(mail.listener.frontDoorHost ? { frontDoorHost: mail.listener.frontDoorHost } : {}),
          } satisfies MailListenerInput,
        ]
      : [];
  const proxy = new MailProxy({
    listeners: [
      ...listener("Imap4", flags.imap, false, "imap"),
      ...listener("Pop3", flags.pop3, false, "pop3"),
      ...listener("Imap4", flags.imaps, true, "imaps"),
      ...listener("Pop3", flags.pop3s, true, "pop3s"),
    ],
    ...mail.options,
    lookupTimeoutMs: flags.lookupTimeoutMs,
    directoryFailurePolicy: flags.onDirectoryFailure,
    ...(flags.defaultSite ? { defaultSite: flags.defaultSite } : {}),
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
    .option("--manifests <dir>", "directory of casgateway.io manifests (ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase, OrganizationRelationship)")
    .option("--xds <host:port>", "instead of --manifests: topology and health from the operator's ADS server (GatewayState over xDS)")
    .option("--node-id <id>", "xDS node id (default mail-proxy-<hostname>)")
    .option("--imap <host:port>", "IMAP4 listener (STARTTLS offered when a certificate is given)")
    .option("--pop3 <host:port>", "POP3 listener (STLS offered when a certificate is given)")
    .option("--imaps <host:port>", "IMAP4 listener with implicit TLS (needs --tls-cert/--tls-key)")
    .option("--pop3s <host:port>", "POP3 listener with implicit TLS (needs --tls-cert/--tls-key)")
    .option("--default-site <site>", "receiving site when the front-door host matches no site")
    .option("--down <server[/Service]...>", "servers (or server/Service) to treat as down", [])
    .option("--admin <host:port>", "admin HTTP address (/metrics, /healthz, /readyz)", "127.0.0.1:9103")
    .option("--log-level <level>", "pino log level", "info");
  addOptions(cmd, directoryOptions, mailProxyOptions, xdsClientOptions).action(async (raw: Record<string, unknown>) => {
    const flags = parseFlags(MailProxyFlags, raw);
    const running = await startMailProxy(flags, directoryOptionsFromFlags(flags));
    for (const l of running.proxy.addresses()) process.stdout.write(`${l.name} on ${l.host}:${l.port}\n`);
    process.stdout.write(`admin on ${flags.admin.host}:${running.adminPort}\n`);
    process.on("SIGHUP", () => void running.reload());
    const stop = () => {
      void running.stop().then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
