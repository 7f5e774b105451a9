// `cas-gateway sidecar (--manifests DIR | --xds HOST:PORT) --directory (FILE.csv | ldap(s)://...) ...`:
// the decision sidecar (ext_authz Check, ext_proc Process, grpc health) plus an admin HTTP port
// (/metrics, /healthz, /readyz). State comes from manifest files (standalone) or from the control
// plane over xDS (GatewayState). SIGHUP reloads the files (manifests and a CSV directory; an LDAP
// directory is live and cached, nothing to reload); a bad reload keeps the last good state.
import type { Command } from "commander";
import { z } from "zod";
import { AdminServer } from "../../operator/admin-server.js";
import { loadAffinityKey } from "../../sidecar/authz/affinity.js";
import { directoryOptionsFromFlags, type DirectoryOptions } from "../../sidecar/directory/open-directory.js";
import { createSidecarLogger } from "../../sidecar/authz/logging.js";
import { SidecarMetrics } from "../../sidecar/authz/metrics.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { drainedRoute } from "../../sidecar/drain/envoy-drain.js";
import { HostPort } from "../flags.js";
import { addOptions, directoryOptions, parseFlags, sidecarOptions, xdsClientOptions, xdsClientTls, xdsClientTlsRule } from "../options/index.js";
import { openRuntimeState } from "../runtime-state.js";
import type { GatewayState, StateSource } from "../../model/state.js";
import { handleAdminPages, type AdminPagesContext } from "../admin/organisation-routes.js";
import { databaseViews, serverRows, siteRows, type OrganisationView, type ProblemRow } from "../admin/organisation-view.js";
import { RecentDecisions, sidecarTotals } from "../admin/recent-decisions.js";

export const SidecarFlags = z.object({
  manifests: z.string().min(1, "--manifests needs a directory").optional(),
  xds: z.string().regex(/^[A-Za-z0-9.:[\]-]+:\d{1,5}$/, "expected HOST:PORT of the control plane's xDS service").optional(),
  nodeId: z.string().min(1).optional(),
  nodeCluster: z.string().min(1),
  ...directoryOptions.shape,
  ...sidecarOptions.shape,
  ...xdsClientOptions.shape,
  listen: HostPort,
  admin: HostPort,
  defaultSite: z.string().min(1).optional(),
  down: z.array(z.string().min(1)),
  extProcBufferedBody: z.boolean().optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  drainedFile: z.string().min(1).optional(),
  adminPagesRemote: z.boolean().optional(),
}).refine((f) => (f.manifests === undefined) !== (f.xds === undefined), {
  message: "give exactly one of --manifests (standalone) or --xds (state from the control plane)",
  path: ["manifests"],
}).refine(...xdsClientTlsRule);
export type SidecarFlags = z.infer<typeof SidecarFlags>;

export interface RunningSidecar {
  readonly grpcPort: number;
  readonly adminPort: number;
  reload(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Start the sidecar. `directoryOptions` (LDAP connection and cache settings, from
 * directoryOptionsFromFlags) apply when `flags.directory` is an ldap(s):// URL.
 */
export async function startSidecar(flags: SidecarFlags, directoryOptions: DirectoryOptions = {}): Promise<RunningSidecar> {
  const logger = createSidecarLogger({ level: flags.logLevel });
  const metrics = new SidecarMetrics({ defaultMetrics: true });
  const runtime = await openRuntimeState({
    ...(flags.manifests ? { manifests: flags.manifests } : {}),
    ...(flags.xds ? { xds: flags.xds } : {}),
    ...(xdsClientTls(flags) ? { xdsTls: xdsClientTls(flags) } : {}),
    node: { ...(flags.nodeId ? { id: flags.nodeId } : {}), idPrefix: "sidecar", cluster: flags.nodeCluster },
    directory: flags.directory,
    down: flags.down,
    directoryOptions,
    registry: metrics.registry,
    logger,
  });
  const { state, directory } = runtime;
  const server = new SidecarServer({
    state,
    directory,
    logger,
    metrics,
    lookupTimeoutMs: flags.lookupTimeoutMs,
    directoryFailurePolicy: flags.onDirectoryFailure,
    affinityTtlSeconds: flags.affinityTtl,
    ...(flags.affinityKeyFile ? { affinityKey: await loadAffinityKey(flags.affinityKeyFile) } : {}),
    ...(flags.defaultSite ? { defaultSite: flags.defaultSite } : {}),
    ...(flags.extProcBufferedBody ? { extProcBufferedBody: true } : {}),
  });
  const grpcPort = await server.start(flags.listen.port, flags.listen.host);
  // The organisation page and POST /explain, from the state this sidecar decides with (cli/admin/).
  const recent = new RecentDecisions(() => sidecarTotals(metrics));
  await recent.start();
  const pages = sidecarPages(state, server, recent, flags.adminPagesRemote ?? false);
  const admin = new AdminServer({
    registry: metrics.registry,
    ready: () => server.ready(),
    host: flags.admin.host,
    port: flags.admin.port,
    handle: (req, res) => handleAdminPages(req, res, pages),
    ...(flags.drainedFile ? { routes: new Map([["/shutdown/drained", drainedRoute(flags.drainedFile)]]) } : {}),
  });
  const { port: adminPort } = await admin.start();
  logger.info({ grpcPort, adminPort, source: flags.manifests ? "files" : `xds ${flags.xds}` }, "sidecar started");
  return {
    grpcPort,
    adminPort,
    reload: () => runtime.reload(),
    async stop() {
      recent.stop();
      await admin.stop();
      await server.stop();
      await runtime.stop();
      logger.flush();
    },
  };
}

/** The organisation page's view from a sidecar's state: topology and health as the control plane sent them. */
function sidecarPages(state: StateSource, server: SidecarServer, recent: RecentDecisions, allowRemote: boolean): AdminPagesContext {
  const downOf = (s: GatewayState | undefined): readonly string[] => {
    const d = (s?.health as { down?: unknown } | undefined)?.down;
    return d instanceof Set ? [...(d as Set<string>)].sort() : [];
  };
  return {
    allowRemote,
    explain: { service: () => server.decisionService(), down: () => downOf(state.current()) },
    view: async (): Promise<OrganisationView> => {
      const s = state.current();
      const down = downOf(s);
      const problems: ProblemRow[] = (s?.topology.problems ?? []).map((p) => ({
        source: "in force",
        severity: p.severity === "error" ? "error" : "warning",
        text: `${p.kind}/${p.name}: ${p.field}: ${p.message}`,
      }));
      return {
        component: "sidecar",
        generatedAt: new Date(),
        topologyVersion: s?.topology.version,
        ready: server.ready(),
        // The control plane probes; a sidecar only hears what is down.
        healthChecks: true,
        sites: siteRows(s?.topology),
        servers: serverRows(s?.topology, down),
        databases: s ? databaseViews(s.topology, down) : [],
        problems,
        problemsSince: undefined,
        decisions: { ...(await recent.summary()), windowMinutes: recent.windowMinutes },
        notRunning: [],
      };
    },
  };
}

export function register(program: Command): void {
  const cmd = program
    .command("sidecar")
    .description("Run the decision sidecar: Envoy ext_authz (Check) and ext_proc (Process) over gRPC, with an admin port for /metrics, /healthz, /readyz")
    .option("--manifests <dir>", "standalone: directory of casgateway.io manifests (ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase, OrganizationRelationship)")
    .option("--xds <host:port>", "take topology and health from the control plane's ADS service (GatewayState) instead of --manifests")
    .option("--node-id <id>", "xDS node id (default sidecar-<hostname>)")
    .option("--node-cluster <name>", "xDS node cluster (the control plane groups nodes by it)", "cas-gateway")
    .option("--listen <host:port>", "gRPC listen address", "127.0.0.1:9001")
    .option("--admin <host:port>", "admin HTTP address (/metrics, /healthz, /readyz; the organisation page / and POST /explain for loopback clients)", "127.0.0.1:9102")
    .option("--admin-pages-remote", "serve the organisation page and POST /explain to clients that are not on loopback too (no login: only behind something that authenticates)")
    .option("--default-site <site>", "receiving site when the Host header matches no site")
    .option("--down <server[/Service]...>", "servers (or server/Service) to treat as down", [])
    .option("--ext-proc-buffered-body", "Envoy's ext_proc buffers request bodies (request_body_mode BUFFERED): decide on the body")
    .option("--log-level <level>", "pino log level", "info")
    .option("--drained-file <file>", "serve GET /shutdown/drained on the admin port: waits until `cas-gateway envoy-drain` has written this file (the gateway pod's preStop hooks)");
  addOptions(cmd, directoryOptions, sidecarOptions, xdsClientOptions).action(async (raw: Record<string, unknown>) => {
    const flags = parseFlags(SidecarFlags, raw);
    const running = await startSidecar(flags, directoryOptionsFromFlags(flags));
    process.stdout.write(`sidecar gRPC on ${flags.listen.host}:${running.grpcPort}, admin on ${flags.admin.host}:${running.adminPort}\n`);
    process.on("SIGHUP", () => void running.reload());
    const stop = () => {
      void running.stop().then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
