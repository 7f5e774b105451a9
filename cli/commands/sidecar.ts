// `cas-gateway sidecar (--manifests DIR | --xds HOST:PORT) --directory (FILE.csv | ldap(s)://...) ...`:
// the decision sidecar (ext_authz Check, ext_proc Process, grpc health) plus an admin HTTP port
// (/metrics, /healthz, /readyz). State comes from manifest files (standalone) or from the control
// plane over xDS (GatewayState). SIGHUP reloads the files (manifests and a CSV directory; an LDAP
// directory is live and cached, nothing to reload); a bad reload keeps the last good state.
import type { Command } from "commander";
import { z } from "zod";
import { AdminServer } from "../../operator/admin-server.js";
import { loadAffinityKey } from "../../sidecar/authz/affinity.js";
import { DEFAULT_LOOKUP_TIMEOUT_MS } from "../../sidecar/authz/decision-service.js";
import {
  addDirectoryFlags,
  directoryOptionsFromFlags,
  type DirectoryFlags,
  type DirectoryOptions,
} from "../../sidecar/directory/open-directory.js";
import { createSidecarLogger } from "../../sidecar/authz/logging.js";
import { SidecarMetrics } from "../../sidecar/authz/metrics.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { drainedRoute } from "../../sidecar/drain/envoy-drain.js";
import { HostPort } from "../flags.js";
import { openRuntimeState } from "../runtime-state.js";

const SidecarFlags = z.object({
  manifests: z.string().min(1, "--manifests needs a directory").optional(),
  xds: z.string().regex(/^[A-Za-z0-9.:[\]-]+:\d{1,5}$/, "expected HOST:PORT of the control plane's xDS service").optional(),
  nodeId: z.string().min(1).optional(),
  nodeCluster: z.string().min(1),
  directory: z.string().min(1, "--directory needs a CSV file (Get-Mailbox | Export-Csv) or an ldap(s):// URL"),
  listen: HostPort,
  admin: HostPort,
  affinityKeyFile: z.string().min(1).optional(),
  affinityTtl: z.coerce.number().int().min(60).max(7 * 86400),
  lookupTimeoutMs: z.coerce.number().int().min(5).max(10_000),
  onDirectoryFailure: z.enum(["fail-closed", "local"]),
  defaultSite: z.string().min(1).optional(),
  down: z.array(z.string().min(1)),
  extProcBufferedBody: z.boolean().optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  drainedFile: z.string().min(1).optional(),
}).refine((f) => (f.manifests === undefined) !== (f.xds === undefined), {
  message: "give exactly one of --manifests (standalone) or --xds (state from the control plane)",
  path: ["manifests"],
});
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
  const admin = new AdminServer({
    registry: metrics.registry,
    ready: () => server.ready(),
    host: flags.admin.host,
    port: flags.admin.port,
    ...(flags.drainedFile ? { routes: new Map([["/shutdown/drained", drainedRoute(flags.drainedFile)]]) } : {}),
  });
  const { port: adminPort } = await admin.start();
  logger.info({ grpcPort, adminPort, source: flags.manifests ? "files" : `xds ${flags.xds}` }, "sidecar started");
  return {
    grpcPort,
    adminPort,
    reload: () => runtime.reload(),
    async stop() {
      await admin.stop();
      await server.stop();
      await runtime.stop();
      logger.flush();
    },
  };
}

export function register(program: Command): void {
  const cmd = program
    .command("sidecar")
    .description("Run the decision sidecar: Envoy ext_authz (Check) and ext_proc (Process) over gRPC, with an admin port for /metrics, /healthz, /readyz")
    .option("--manifests <dir>", "standalone: directory of casgateway.io manifests (ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase)")
    .option("--xds <host:port>", "take topology and health from the control plane's ADS service (GatewayState) instead of --manifests")
    .option("--node-id <id>", "xDS node id (default sidecar-<hostname>)")
    .option("--node-cluster <name>", "xDS node cluster (the control plane groups nodes by it)", "cas-gateway")
    .option("--listen <host:port>", "gRPC listen address", "127.0.0.1:9001")
    .option("--admin <host:port>", "admin HTTP address (/metrics, /healthz, /readyz)", "127.0.0.1:9102")
    .option("--affinity-key-file <file>", "HMAC key for affinity cookies (>= 32 bytes; a mounted Secret). Without it a random per-process key is used")
    .option("--affinity-ttl <seconds>", "affinity pin lifetime", "28800")
    .option("--lookup-timeout-ms <ms>", "directory look-up deadline; keep below Envoy's ext_authz timeout (default 200 ms)", String(DEFAULT_LOOKUP_TIMEOUT_MS))
    .option("--on-directory-failure <policy>", "fail-closed (503) or local (serve from the receiving site)", "fail-closed")
    .option("--default-site <site>", "receiving site when the Host header matches no site")
    .option("--down <server[/Service]...>", "servers (or server/Service) to treat as down", [])
    .option("--ext-proc-buffered-body", "Envoy's ext_proc buffers request bodies (request_body_mode BUFFERED): decide on the body")
    .option("--log-level <level>", "pino log level", "info")
    .option("--drained-file <file>", "serve GET /shutdown/drained on the admin port: waits until `cas-gateway envoy-drain` has written this file (the gateway pod's preStop hooks)");
  addDirectoryFlags(cmd, { required: true }).action(async (raw: Record<string, unknown>) => {
    const parsed = SidecarFlags.safeParse(raw);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new Error(`--${String(i?.path[0] ?? "?").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i?.message}`);
    }
    const running = await startSidecar(parsed.data, directoryOptionsFromFlags(raw as DirectoryFlags));
    process.stdout.write(`sidecar gRPC on ${parsed.data.listen.host}:${running.grpcPort}, admin on ${parsed.data.admin.host}:${running.adminPort}\n`);
    process.on("SIGHUP", () => void running.reload());
    const stop = () => {
      void running.stop().then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
