// `cas-gateway standalone`: the whole gateway in one process on loopback, fed from files (like Envoy
// Gateway's standalone mode): file provider → control plane → ADS server (+ GatewayState for
// sidecars), the decision sidecar (ext_authz/ext_proc), the POP3/IMAP4 mail proxy, the active
// health prober, and an admin HTTP port (/healthz, /readyz, /metrics, /config_dump). It writes an
// Envoy bootstrap pointing at its ADS server and starts Envoy when a binary is given or on PATH.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { Command } from "commander";
import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { z } from "zod";
import { ControlPlane, type DownListSource } from "../../operator/controlplane.js";
import { HealthProber } from "../../operator/health/prober.js";
import { FileProvider } from "../../operator/provider/file-provider.js";
import { formatError } from "../../operator/provider/manifests.js";
import { buildTopology } from "../../model/topology/build.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { bootstrap, translate, type TranslateOptions } from "../../operator/xds/translate/index.js";
import { loadAffinityKey } from "../../sidecar/authz/affinity.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { MailProxy } from "../../sidecar/mail/index.js";
import { directoryOptionsFromFlags, isLdapDirectorySpec, openDirectory, type DirectoryOptions } from "../../sidecar/directory/open-directory.js";
import type { MailboxDirectory } from "../../model/directory/types.js";
import type { StateSource } from "../../model/state.js";
import { addOptions, directoryOptions, configInputOptions, envoyListenerOptions, envoyListenerSettings, mailProxyOptions, mailProxySettings, mailTlsPair, parseFlags, sidecarOptions } from "../options/index.js";
import { ensureDevCertificate, type DevCertificate } from "../dev-cert.js";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { databaseViews } from "../admin/databases.js";
import { handleAdminPages, type AdminPagesContext } from "../admin/organisation-routes.js";
import { ProblemClock, serverRows, siteRows, type OrganisationView, type ProblemRow } from "../admin/organisation-view.js";
import { RecentDecisions, sidecarTotals } from "../admin/recent-decisions.js";

const port = (what: string) => z.coerce.number().int().min(0, `${what} must be 0-65535`).max(65535, `${what} must be 0-65535`);

export const StandaloneFlags = z.object({
  manifests: z.string().min(1, "--manifests needs a directory"),
  // The components' own options, as `sidecar` and `mail-proxy` take them (cli/options/).
  ...directoryOptions.shape,
  ...sidecarOptions.shape,
  ...mailProxyOptions.shape,
  ...configInputOptions.shape,
  ...envoyListenerOptions.shape,
  site: z.string().min(1).optional(),
  xdsPort: port("--xds-port"),
  authzPort: port("--authz-port"),
  adminPort: port("--admin-port"),
  pop3Port: port("--pop3-port"),
  imap4Port: port("--imap4-port"),
  envoyAdminPort: port("--envoy-admin-port"),
  envoyReadyPort: port("--envoy-ready-port").prefault("19001"),
  httpPort: port("--http-port"),
  httpsPort: port("--https-port"),
  healthChecks: z.boolean(),
  envoy: z.string().min(1),
  bootstrap: z.string().min(1).optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
}).refine(...mailTlsPair);
export type StandaloneFlags = z.infer<typeof StandaloneFlags>;

/** Find an executable on PATH. */
function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? "").split(delimiter)) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Ports that Envoy binds, not this process: 0 becomes a port that is free on loopback now (all of
 * them held at once, so they differ), as 0 means "any free port" for the ports this process binds.
 * The translated listeners and the HTTP->HTTPS redirect then name real ports. Envoy binds them a
 * moment later; another process could take one in between, which Envoy would report.
 */
export async function resolveFreePorts<K extends string>(ports: Record<K, number>): Promise<Record<K, number>> {
  const held: Server[] = [];
  try {
    const out = { ...ports };
    for (const k of Object.keys(ports) as K[]) {
      if (ports[k] !== 0) continue;
      const srv = createServer();
      held.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      });
      out[k] = (srv.address() as AddressInfo).port;
    }
    return out;
  } finally {
    await Promise.all(held.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }
}

export interface RunningStandalone {
  readonly xdsPort: number;
  /** Envoy's ports as configured (0 resolved to free ports). */
  readonly envoyPorts: { readonly http: number; readonly https: number; readonly admin: number; readonly ready: number };
  readonly authzPort: number;
  readonly adminPort: number;
  readonly mailPorts: readonly { protocol: string; port: number }[];
  readonly bootstrapFile: string;
  /** Envoy's front-door certificate: the --tls-cert/--tls-key files, or the development certificate made at start. */
  readonly frontDoorCertificate: { readonly certFile: string; readonly keyFile: string; readonly sha256: string; readonly development: boolean; readonly names?: readonly string[] };
  /** What Envoy is doing: a pid, or why it was not started. */
  readonly envoy: string;
  /** Components that are not running, with the reason. */
  readonly missing: readonly string[];
  /** The gateway state the sidecar and mail proxy decide with (each version, as it is published). */
  readonly state: StateSource;
  stop(): Promise<void>;
}

/** A prober-backed down-list that follows the topology (created before the first topology exists). */
class FollowingProber implements DownListSource {
  readonly prober: HealthProber;
  constructor(registry: Registry, logger: Logger) {
    this.prober = new HealthProber(buildTopology([]), { registry, logger });
  }
  down(): readonly string[] {
    return this.prober.down();
  }
  subscribe(listener: (down: readonly string[]) => void): () => void {
    return this.prober.subscribe((d) => listener(d));
  }
}

/**
 * Start everything. `directoryOptions` (LDAP connection and cache settings, from
 * directoryOptionsFromFlags) apply when `flags.directory` is an ldap(s):// URL.
 */
export async function startStandalone(
  flags: StandaloneFlags,
  log: Logger = pino({ level: flags.logLevel }),
  directoryOptions: DirectoryOptions = {},
): Promise<RunningStandalone> {
  // Certificate and CA files are read first: a bad one stops the start with the flag's name.
  const mailSettings = mailProxySettings(flags);
  const envoyPorts = await resolveFreePorts({ http: flags.httpPort, https: flags.httpsPort, admin: flags.envoyAdminPort, ready: flags.envoyReadyPort });
  const bootstrapFile = flags.bootstrap ?? join(tmpdir(), "cas-gateway-standalone", `envoy-${flags.site ?? "gateway"}.yaml`);
  const frontDoorCertificate = await frontDoorCertificateFor(flags, dirname(bootstrapFile), log);
  const missing: string[] = [];
  const registries: Registry[] = [];
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn({ err }, "error while stopping");
      }
    }
  };
  try {
    // ADS server first: the translator's options and Envoy's bootstrap need its port.
    const xdsRegistry = new Registry();
    registries.push(xdsRegistry);
    const ads = new AdsServer({ logger: log.child({ component: "xds" }), registry: xdsRegistry, identifier: "cas-gateway-standalone" });
    const xdsPort = await ads.listen(flags.xdsPort);
    stops.push(() => ads.close(1000));

    // A CSV directory is watched by the file provider with the manifests; an LDAP one is live (cached).
    const ldap = isLdapDirectorySpec(flags.directory);
    const providerRegistry = new Registry();
    registries.push(providerRegistry);
    const provider = new FileProvider({
      manifestDir: flags.manifests,
      ...(ldap ? {} : { directoryFile: flags.directory }),
      settleMs: flags.settleMs,
      allowShrink: flags.allowShrink ?? false,
      manifestBudget: {
        maxFileBytes: flags.maxManifestFileBytes,
        maxDirBytes: flags.maxManifestDirBytes,
        maxFiles: flags.maxManifestFiles,
        maxDocumentsPerFile: flags.maxManifestDocuments,
      },
      maxDirectoryBytes: flags.maxDirectoryBytes,
      // A big export loads in the background: the admin port answers (/readyz says why not yet) meanwhile.
      waitForDirectory: false,
      registry: providerRegistry,
      logger: log.child({ component: "provider" }),
    });

    let prober: FollowingProber | undefined;
    if (flags.healthChecks) {
      const reg = new Registry();
      registries.push(reg);
      prober = new FollowingProber(reg, log.child({ component: "health" }));
    } else missing.push("health prober: turned off by --no-health-checks (every backend is treated as healthy)");

    // Ports for Envoy's listeners and the mail proxy; the proxy binds first so port 0 resolves.
    const translateOptions = (authzPort: number, pop3Port: number, imap4Port: number): TranslateOptions => ({
      sidecar: { address: "127.0.0.1", port: authzPort },
      mailProxy: { address: "127.0.0.1", pop3Port, imap4Port, ...(mailSettings.listener.proxyProtocol ? { proxyProtocol: true } : {}) },
      listenAddress: "127.0.0.1",
      ...envoyListenerSettings(flags),
      // Every listener on an unprivileged port (translator defaults, or --listener-ports); HTTP and
      // HTTPS from --http-port/--https-port. Clients reach them directly, so public = bound unless
      // --public-ports says otherwise (a port forward or load balancer in front).
      ports: { ...(flags.listenerPorts ?? {}), http: envoyPorts.http, https: envoyPorts.https },
      tls: { certFile: frontDoorCertificate.certFile, keyFile: frontDoorCertificate.keyFile },
      healthChecks: flags.healthChecks,
    });

    const cp = new ControlPlane({
      provider,
      cache: ads.cache,
      ...(prober ? { health: prober } : {}),
      logger: log.child({ component: "controlplane" }),
    });
    let directory: MailboxDirectory = provider;
    if (ldap) {
      const reg = new Registry();
      registries.push(reg);
      const d = await openDirectory(flags.directory, {
        ...directoryOptions,
        // homeMDB -> database name: prefer the name the current topology knows.
        knownDatabase: (n) => cp.current()?.topology.findDatabase(n) !== undefined,
        registry: reg,
        logger: log.child({ component: "directory" }),
      });
      stops.push(() => d.close?.());
      directory = d;
    }
    // The sidecar reads the control plane's in-process state (no xDS hop inside one process).
    const authz = new SidecarServer({
      state: cp.state,
      directory,
      logger: log.child({ component: "sidecar" }),
      lookupTimeoutMs: flags.lookupTimeoutMs,
      directoryFailurePolicy: flags.onDirectoryFailure,
      affinityTtlSeconds: flags.affinityTtl,
      ...(flags.affinityKeyFile ? { affinityKey: await loadAffinityKey(flags.affinityKeyFile) } : {}),
      ...(flags.site ? { defaultSite: flags.site } : {}),
    });
    registries.push(authz.metrics.registry);
    const authzPort = await authz.start(flags.authzPort, "127.0.0.1");
    stops.push(() => authz.stop());

    let mailPorts: { protocol: string; port: number }[] = [];
    try {
      const { decide } = await import("../../sidecar/decision/engine.js");
      const { identityCandidates } = await import("../../sidecar/decision/identity.js");
      // With --tls-cert/--tls-key (the front-door certificate) the listeners offer STARTTLS/STLS.
      const mail = new MailProxy({
        listeners: [
          { protocol: "Pop3", host: "127.0.0.1", port: flags.pop3Port, name: "pop3", ...mailSettings.listener },
          { protocol: "Imap4", host: "127.0.0.1", port: flags.imap4Port, name: "imap4", ...mailSettings.listener },
        ],
        ...mailSettings.options,
        lookupTimeoutMs: flags.lookupTimeoutMs,
        directoryFailurePolicy: flags.onDirectoryFailure,
        state: cp.state,
        directory,
        decide,
        identityCandidates,
        ...(flags.site ? { defaultSite: flags.site } : {}),
        logger: log.child({ component: "mail" }),
      });
      registries.push(mail.metrics.registry);
      const bound = await mail.start();
      stops.push(() => mail.stop());
      mailPorts = bound.map((b) => ({ protocol: b.protocol, port: b.port }));
    } catch (err) {
      missing.push(`mail proxy: ${err instanceof Error ? err.message : String(err)}`);
    }
    const pop3 = mailPorts.find((m) => m.protocol === "Pop3")?.port ?? 0;
    const imap4 = mailPorts.find((m) => m.protocol === "Imap4")?.port ?? 0;
    const opts = translateOptions(authzPort, pop3 || 1, imap4 || 1);
    // The sidecar and mail ports are known only now (Envoy's clusters point at them): set the translator before start.
    cp.setTranslator({ fn: translate, options: opts });

    await cp.start();
    stops.push(() => cp.stop());
    if (prober) {
      const p = prober.prober;
      const first = cp.current();
      if (first) p.setTopology(first.topology);
      cp.onUpdate((v) => p.setTopology(v.topology));
      p.start();
      stops.push(() => p.stop());
    }

    // Envoy bootstrap pointing at our ADS server.
    const b = bootstrap({
      nodeId: `standalone-${flags.site ?? "gateway"}`,
      nodeCluster: flags.site ?? "standalone",
      xds: { address: "127.0.0.1", port: xdsPort },
      adminPort: envoyPorts.admin,
      readyPort: envoyPorts.ready,
      readyAddress: "127.0.0.1",
    });
    await mkdir(dirname(bootstrapFile), { recursive: true });
    await writeFile(bootstrapFile, b.yaml);

    // Admin HTTP.
    const metrics = Registry.merge(registries);
    // Ready only when the gateway can answer correctly; otherwise every reason, so an operator sees all of them.
    let envoyExit: string | undefined;
    const ready = (): true | string => {
      const why: string[] = [];
      const v = cp.current();
      const st = provider.status();
      if (!v) why.push("no configuration loaded yet");
      else if (v.topology.servers.size === 0) why.push(`the organisation in force has no servers (${flags.manifests})`);
      if (st.manifests.rejected) {
        const first = st.manifests.errors[0];
        why.push(`manifests rejected (${st.manifests.errors.length} error${st.manifests.errors.length === 1 ? "" : "s"}, the last good configuration stays in force; see /config_dump): ${first ? formatError(first) : ""}`);
      }
      if (st.directory) {
        if (!st.directory.loaded) why.push(st.directory.loading ? "mailbox directory still loading" : "no mailbox directory loaded");
        if (st.directory.rejected) {
          const first = st.directory.errors[0];
          why.push(`mailbox CSV rejected (the last good directory stays in force): ${first ? formatError(first) : ""}`);
        }
      }
      if (envoyExit) why.push(envoyExit);
      const r = authz.ready();
      if (r !== true) why.push(`sidecar: ${r}`);
      return why.length === 0 ? true : why.join("; ");
    };
    const configDump = () => {
      const v = cp.current();
      return {
        topologyVersion: v?.topology.version,
        sites: v ? [...v.topology.sites.keys()] : [],
        servers: v?.topology.servers.size ?? 0,
        providerErrors: v?.providerErrors ?? [],
        topologyProblems: v?.topology.problems ?? [],
        translationProblems: v?.translationProblems ?? [],
        down: v?.down ?? [],
        // Where each database is active and where its copies are, with what is down (after a failover).
        databases: v ? databaseViews(v.topology, v.down ?? []) : [],
        snapshot: v
          ? Object.fromEntries(
              v.snapshot.typeUrls().map((t) => [
                t,
                { version: v.snapshot.version(t), resources: [...v.snapshot.resources(t).values()].map((r) => ({ name: r.name, version: r.version })) },
              ]),
            )
          : {},
        resources: v?.translation
          ? { listeners: v.translation.listeners.map((r) => r.value), routes: v.translation.routes.map((r) => r.value), clusters: v.translation.clusters.map((r) => r.value), endpoints: v.translation.endpoints.map((r) => r.value) }
          : undefined,
        fleet: { ackedTopologyVersion: ads.fleet.ackedTopologyVersion() ?? null },
        streams: ads.streamStatus(),
        // What the watched files hold and what was refused: budgets, usage, rejected input with file:line.
        provider: provider.status(),
        ready: ready(),
        missing,
      };
    };
    // Decision counts over the last minutes for the organisation page (sampled, off the request path).
    const recent = new RecentDecisions(() => sidecarTotals(authz.metrics));
    await recent.start();
    stops.push(() => recent.stop());
    const problemClock = new ProblemClock();
    const pages: AdminPagesContext = {
      explain: { service: () => authz.decisionService(), down: () => cp.current()?.down ?? [] },
      view: async (): Promise<OrganisationView> => {
        const v = cp.current();
        const st = provider.status();
        const problems: ProblemRow[] = [
          ...(st.manifests.rejected ? st.manifests.errors.map((e) => ({ source: "rejected edit", severity: "error" as const, text: formatError(e) })) : []),
          ...(st.directory?.rejected ? st.directory.errors.map((e) => ({ source: "mailbox directory, rejected", severity: "error" as const, text: formatError(e) })) : []),
          ...provider.warnings().map((e) => ({ source: "in force", severity: "warning" as const, text: formatError(e) })),
          ...(v?.translationProblems ?? []).map((p) => ({ source: "Envoy configuration", severity: p.severity === "error" ? ("error" as const) : ("warning" as const), text: `${p.kind}/${p.name}: ${p.field}: ${p.message}` })),
        ];
        const down = v?.down ?? [];
        return {
          component: "standalone",
          generatedAt: new Date(),
          topologyVersion: v?.topology.version,
          ready: ready(),
          healthChecks: flags.healthChecks,
          sites: siteRows(v?.topology),
          servers: serverRows(v?.topology, down),
          databases: v ? databaseViews(v.topology, down) : [],
          problems,
          problemsSince: problemClock.observe(problems),
          decisions: { ...(await recent.summary()), windowMinutes: recent.windowMinutes },
          notRunning: missing,
        };
      },
    };
    const admin = http.createServer((req, res) => {
      void handleAdminPages(req, res, pages)
        .then((handled) => {
          if (!handled) serveAdmin(req, res);
        })
        .catch((err: unknown) => {
          log.warn({ err }, "admin request failed");
          if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
          res.end("internal error\n");
        });
    });
    const serveAdmin = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
        return;
      }
      if (path === "/healthz") res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      else if (path === "/readyz") {
        const r = ready();
        if (r === true) res.writeHead(200, { "content-type": "text/plain" }).end(`ready${missing.length ? ` (not running: ${missing.join("; ")})` : ""}\n`);
        else res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${r}\n`);
      } else if (path === "/metrics") {
        metrics.metrics().then(
          (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
          () => res.writeHead(500).end(),
        );
      } else if (path === "/config_dump") {
        res.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(configDump(), null, 2)}\n`);
      } else res.writeHead(404, { "content-type": "text/plain" }).end("not found: try / (the organisation page) /healthz /readyz /metrics /config_dump, POST /explain\n");
    };
    await new Promise<void>((resolve, reject) => {
      admin.once("error", reject);
      admin.listen(flags.adminPort, "127.0.0.1", () => resolve());
    });
    const adminPort = (admin.address() as AddressInfo).port;
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          admin.closeAllConnections();
          admin.close(() => resolve());
        }),
    );

    // Envoy.
    let envoyState: string;
    let child: ChildProcess | undefined;
    const envoyBin = flags.envoy === "off" ? undefined : flags.envoy === "auto" ? onPath("envoy") : flags.envoy;
    if (flags.envoy === "off") envoyState = `not started (--envoy off); run: envoy -c ${bootstrapFile}`;
    else if (!envoyBin) {
      envoyState = `not started: no envoy binary on PATH (--envoy auto); running as control plane + sidecar only. Start Envoy yourself with: envoy -c ${bootstrapFile}`;
      missing.push("envoy: no envoy binary on PATH");
    } else {
      try {
        accessSync(envoyBin, fsConstants.X_OK);
      } catch {
        throw new Error(`--envoy ${envoyBin}: not an executable file`);
      }
      child = spawn(envoyBin, ["-c", bootstrapFile, "--log-level", "info"], { stdio: ["ignore", "inherit", "inherit"] });
      envoyState = `started: ${envoyBin} (pid ${child.pid}) with ${bootstrapFile}`;
      child.on("exit", (code, signal) => {
        envoyExit = `envoy exited (${signal ? `signal ${signal}` : `code ${code}`}); traffic is not being served`;
        log.warn({ code, signal }, "envoy exited");
      });
      const c = child;
      stops.push(
        () =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
            setTimeout(() => c.kill("SIGKILL"), 5000).unref();
          }),
      );
    }
    log.info({ xdsPort, authzPort, adminPort, mailPorts, envoyPorts, bootstrapFile, frontDoorCertificate, envoy: envoyState, missing }, "standalone started");
    return { xdsPort, envoyPorts, authzPort, adminPort, mailPorts, bootstrapFile, frontDoorCertificate, envoy: envoyState, missing, state: cp.state, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export function register(program: Command): void {
  const cmd = program
    .command("standalone")
    .description(
      "Run the whole gateway in one process on loopback from files: control plane (ADS), decision sidecar, mail proxy, health prober, admin port; writes an Envoy bootstrap and starts Envoy when one is available",
    )
    .requiredOption("--manifests <dir>", "directory of casgateway.io manifests (watched; changes are pushed to Envoy)")
    .option("--site <name>", "the AD site this gateway stands in (receiving site when the Host matches none)")
    .option("--xds-port <n>", "ADS gRPC port (0: any free port)", "18000")
    .option("--authz-port <n>", "sidecar ext_authz/ext_proc gRPC port", "9001")
    .option("--admin-port <n>", "admin HTTP port on loopback: the organisation page (/), POST /explain, /healthz /readyz /metrics /config_dump", "9902")
    .option("--pop3-port <n>", "mail proxy POP3 port (Envoy forwards POP3 here)", "1110")
    .option("--imap4-port <n>", "mail proxy IMAP4 port (Envoy forwards IMAP4 here)", "1143")
    .option("--http-port <n>", "Envoy's HTTP listener port (0: a port free at start)", "8080")
    .option("--https-port <n>", "Envoy's HTTPS listener port, with --tls-cert/--tls-key or else a development certificate (0: a port free at start)", "8443")
    .option("--envoy-admin-port <n>", "Envoy's admin port (loopback; 0: a port free at start)", "9901")
    .option("--envoy-ready-port <n>", "Envoy's readiness endpoint, GET /ready (loopback; 0: a port free at start)", "19001")
    .option("--no-health-checks", "no active health probing (control plane) and no Envoy health checks")
    .option("--envoy <mode>", "off | auto (start envoy if on PATH) | PATH to an envoy binary", "auto")
    .option("--bootstrap <file>", "where to write the Envoy bootstrap (default: $TMPDIR/cas-gateway-standalone/envoy-<site>.yaml)")
    .option("--log-level <level>", "pino log level", "info");
  // --directory: a CSV file is watched with the manifests; an ldap(s):// URL is queried live (cached).
  addOptions(cmd, directoryOptions, sidecarOptions, mailProxyOptions, configInputOptions, envoyListenerOptions).action(async (raw: Record<string, unknown>) => {
    const flags = parseFlags(StandaloneFlags, raw);
    // Logs (JSON) to stderr; stdout keeps the human summary.
    const log = pino({ level: flags.logLevel }, pino.destination(2));
    const running = await startStandalone(flags, log, directoryOptionsFromFlags(flags));
    const out = process.stdout;
    out.write(`cas-gateway standalone\n`);
    out.write(`  ADS (xDS) server   127.0.0.1:${running.xdsPort}\n`);
    out.write(`  sidecar (authz)    127.0.0.1:${running.authzPort}\n`);
    for (const m of running.mailPorts) out.write(`  mail proxy ${m.protocol.padEnd(8)}127.0.0.1:${m.port}\n`);
    out.write(`  organisation page  http://127.0.0.1:${running.adminPort}/ (and POST /explain, /healthz, /readyz, /metrics, /config_dump)\n`);
    out.write(`  Envoy listeners    http 127.0.0.1:${running.envoyPorts.http}, https 127.0.0.1:${running.envoyPorts.https}, admin 127.0.0.1:${running.envoyPorts.admin}\n`);
    out.write(`  Envoy ready        http://127.0.0.1:${running.envoyPorts.ready}/ready\n`);
    const fd = running.frontDoorCertificate;
    out.write(`  HTTPS certificate  ${fd.certFile}${fd.development ? " (DEVELOPMENT certificate, self-signed)" : ""}\n`);
    out.write(`                     SHA-256 ${fd.sha256}\n`);
    out.write(`  try                https://localhost:${running.envoyPorts.https}/owa (once Envoy runs)\n`);
    out.write(`  Envoy bootstrap    ${running.bootstrapFile}\n`);
    out.write(`  Envoy              ${running.envoy}\n`);
    for (const m of running.missing) out.write(`  not running: ${m}\n`);
    out.write(`Ctrl-C to stop.\n`);
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, "shutting down");
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      void running.stop().then(() => {
        log.flush();
        process.exit(0);
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}

/**
 * Envoy's front-door certificate for standalone: --tls-cert/--tls-key when given (PEM files),
 * otherwise a self-signed development certificate for every site host name in the manifests plus
 * localhost, written beside the bootstrap (docs/front-door.md: putting a real one in front).
 */
async function frontDoorCertificateFor(flags: StandaloneFlags, dir: string, log: Logger): Promise<RunningStandalone["frontDoorCertificate"]> {
  if (flags.tlsCert && flags.tlsKey) {
    const { X509Certificate } = await import("node:crypto");
    const { readFile } = await import("node:fs/promises");
    let sha256: string;
    try {
      sha256 = new X509Certificate(await readFile(flags.tlsCert)).fingerprint256;
    } catch (err) {
      throw new Error(`--tls-cert ${flags.tlsCert}: not a PEM certificate (${err instanceof Error ? err.message : String(err)})`);
    }
    return { certFile: flags.tlsCert, keyFile: flags.tlsKey, sha256, development: false };
  }
  const set = await loadManifestDir(flags.manifests);
  const hostnames: string[] = [];
  for (const o of set.objects) if (o.object.kind === "ADSite") hostnames.push(...((o.object.spec as { hostnames?: string[] }).hostnames ?? []));
  const c: DevCertificate = await ensureDevCertificate(dir, hostnames);
  log.warn(
    { certFile: c.certFile, keyFile: c.keyFile, sha256: c.sha256, names: c.names, notAfter: c.notAfter.toISOString(), reused: !c.created },
    "HTTPS uses a self-signed DEVELOPMENT certificate (no --tls-cert/--tls-key): clients will not trust it; give a real certificate for anything but a test (docs/front-door.md)",
  );
  return { certFile: c.certFile, keyFile: c.keyFile, sha256: c.sha256, development: true, names: c.names };
}
