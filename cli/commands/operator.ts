// `cas-gateway operator`: the Kubernetes operator. Watches the casgateway.io objects (one namespace or
// all), serves the topology to Envoy and the sidecars over ADS (every replica), writes status
// conditions and events (the leader only, by Lease), and answers /healthz, /readyz, /metrics.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Command } from "commander";
import { pino, type Logger } from "pino";
import { Registry, collectDefaultMetrics } from "prom-client";
import { z } from "zod";
import { AdminServer } from "../../operator/admin-server.js";
import { ControlPlane, type DownListSource } from "../../operator/controlplane.js";
import { HealthProber } from "../../operator/health/prober.js";
import { KubernetesMetrics } from "../../operator/kubernetes/metrics.js";
import { KubernetesOperator } from "../../operator/kubernetes/runtime.js";
import { buildTopology } from "../../model/topology/build.js";
import { AdsServer } from "../../operator/xds/server/server.js";
import { resolveOptions, translate, type TranslateOptions } from "../../operator/xds/translate/index.js";
import { addEnvoyFlags, envoyFlagShape, envoyTranslateOptions, tlsPair } from "../envoy-flags.js";
import { HostPort } from "../flags.js";
import { addOptions, envoyListenerOptions, envoyListenerSettings } from "../options/index.js";
import { UsageError } from "../errors.js";
import { loadKubeConfig } from "../kubeconfig.js";

const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes name");

export const OperatorFlags = z
  .object({
    namespace: k8sName.optional(),
    allNamespaces: z.boolean().optional(),
    kubeconfig: z.string().min(1).optional(),
    identity: z.string().min(1).max(128).optional(),
    leaseNamespace: k8sName.optional(),
    leaseName: k8sName.default("cas-gateway-operator"),
    xdsListen: HostPort.prefault("127.0.0.1:18000"),
    admin: HostPort.prefault("127.0.0.1:9090"),
    mailboxConfigmap: z
      .string()
      .regex(/^[a-z0-9-]+\/[a-z0-9.-]+:[-._a-zA-Z0-9]+$/, "must be namespace/name:key")
      .transform((s) => {
        const [ref, key] = s.split(":");
        const [namespace, name] = ref.split("/");
        return { namespace, name, key };
      })
      .optional(),
    /** A client behind its snapshot this long stops holding Programmed back (said in the condition). */
    xdsAckTimeoutSeconds: z.coerce.number().int().min(1).max(3600).default(60),
    /** Each replica's ADS progress report (a Lease) is renewed every third of this, and ignored when older. */
    fleetReportSeconds: z.coerce.number().int().min(3).max(600).default(30),
    /** ADS over mutual TLS: the server's certificate and key, and the CA that signs clients' certificates. */
    xdsTlsCert: z.string().min(1).optional(),
    xdsTlsKey: z.string().min(1).optional(),
    xdsClientCa: z.string().min(1).optional(),
    ...envoyFlagShape,
    ...envoyListenerOptions.shape,
    logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  })
  .refine((f) => !(f.namespace && f.allNamespaces), { message: "--namespace and --all-namespaces are alternatives" })
  .refine((f) => f.namespace || f.allNamespaces, { message: "say which objects to watch: --namespace NS or --all-namespaces" })
  .refine(...tlsPair)
  .refine((f) => [f.xdsTlsCert, f.xdsTlsKey, f.xdsClientCa].every((v) => v === undefined) || [f.xdsTlsCert, f.xdsTlsKey, f.xdsClientCa].every((v) => v !== undefined), {
    message: "--xds-tls-cert, --xds-tls-key and --xds-client-ca go together (ADS over TLS requires client certificates)",
    path: ["xdsTlsCert"],
  });
export type OperatorFlagsInput = z.input<typeof OperatorFlags>;
export type OperatorFlags = z.output<typeof OperatorFlags>;

export interface RunningOperator {
  readonly kube: KubernetesOperator;
  readonly ads: AdsServer;
  readonly controlPlane: ControlPlane;
  /** Active health probing of the servers (undefined with --no-health-checks). */
  readonly prober: HealthProber | undefined;
  readonly xdsPort: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

export function translateOptionsFrom(f: OperatorFlags): TranslateOptions {
  return {
    ...envoyTranslateOptions(f),
    ...envoyListenerSettings(f),
  };
}

/** Start everything; `kc` defaults to the in-cluster config, --kubeconfig, or $KUBECONFIG / ~/.kube/config. */
export async function startOperator(f: OperatorFlags, opts: { kc?: KubeConfig; logger?: Logger; leaseTimings?: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number }; debounceMs?: number } = {}): Promise<RunningOperator> {
  const log = opts.logger ?? pino({ name: "operator", level: f.logLevel });
  const kc = opts.kc ?? loadKubeConfig(f.kubeconfig);
  const translateOptions = translateOptionsFrom(f);
  resolveOptions(translateOptions); // bad options fail here, before anything starts
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new KubernetesMetrics(registry);
  const ads = new AdsServer({
    logger: log.child({ component: "xds" }),
    registry,
    ackTimeoutMs: f.xdsAckTimeoutSeconds * 1000,
    ...(f.xdsTlsCert && f.xdsTlsKey && f.xdsClientCa ? { tls: { certFile: f.xdsTlsCert, keyFile: f.xdsTlsKey, clientCaFile: f.xdsClientCa } } : {}),
  });
  const xdsPort = await ads.listen(f.xdsListen.port, f.xdsListen.host);
  const identity = f.identity ?? process.env.POD_NAME ?? hostname();
  const kube = new KubernetesOperator({
    kc,
    log,
    namespace: f.allNamespaces ? undefined : f.namespace,
    identity,
    lease: {
      namespace: f.leaseNamespace ?? process.env.POD_NAMESPACE ?? f.namespace ?? "default",
      name: f.leaseName,
      ...(opts.leaseTimings ? { durationMs: opts.leaseTimings.durationMs, renewDeadlineMs: opts.leaseTimings.renewDeadlineMs, retryPeriodMs: opts.leaseTimings.retryPeriodMs } : {}),
    },
    mailboxConfigMap: f.mailboxConfigmap,
    metrics,
    fleet: ads.fleet,
    fleetReports: { ttlMs: f.fleetReportSeconds * 1000 },
    debounceMs: opts.debounceMs,
  });
  // Every replica probes the servers itself: the down-list goes to the sidecars in GatewayState, so
  // decisions (affinity, failover) avoid servers that are down (Envoy also health-checks its clusters).
  // With --upstream-ca the health checks trust what Envoy trusts (the chart mounts the bundle at the
  // same path in both containers); a server's own spec.tls.caBundle wins for that server.
  const upstreamCa = f.upstreamCa ? readUpstreamCa(f.upstreamCa) : undefined;
  const prober = f.healthChecks ? new HealthProber(buildTopology([]), { registry, logger: log.child({ component: "health" }), ...(upstreamCa ? { ca: upstreamCa } : {}) }) : undefined;
  const health: DownListSource | undefined = prober && { down: () => prober.down(), subscribe: (l) => prober.subscribe((d) => l(d)) };
  const controlPlane = new ControlPlane({
    provider: kube.snapshotProvider(),
    cache: ads.cache,
    translate: { fn: translate, options: translateOptions },
    ...(health ? { health } : {}),
    logger: log.child({ component: "controlplane" }),
  });
  await controlPlane.start(); // registers for snapshots; the first arrives when the informers have listed
  if (prober) {
    controlPlane.onUpdate((v) => prober.setTopology(v.topology));
    prober.start();
  }
  const admin = new AdminServer({
    registry,
    ready: () => (!kube.ready ? "informers have not listed yet" : controlPlane.current() ? true : "no snapshot published yet"),
    host: f.admin.host,
    port: f.admin.port,
  });
  const adminAddr = await admin.start();
  await kube.start();
  log.info({ identity, xdsPort, adminPort: adminAddr.port, namespace: f.namespace ?? "(all)" }, "operator started");
  let stopped = false;
  return {
    kube,
    ads,
    controlPlane,
    prober,
    xdsPort,
    adminPort: adminAddr.port,
    async stop() {
      if (stopped) return;
      stopped = true;
      // Release the Lease first so a standby starts writing status at once; keep serving xDS until the end.
      await kube.stop();
      await prober?.stop();
      await controlPlane.stop();
      await ads.close(2000);
      await admin.stop();
      log.info("operator stopped");
    },
  };
}

function readUpstreamCa(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`--upstream-ca ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--upstream-ca ${file}: no PEM certificate in it`);
  return text;
}

export function register(program: Command): void {
  const cmd = program
    .command("operator")
    .description("Run the Kubernetes operator: watch casgateway.io objects, serve Envoy over ADS, write status conditions (leader only)")
    .option("-n, --namespace <ns>", "watch this namespace only")
    .option("-A, --all-namespaces", "watch every namespace")
    .option("--kubeconfig <file>", "kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)")
    .option("--identity <id>", "leader election identity (default: $POD_NAME, else the host name)")
    .option("--lease-namespace <ns>", "namespace of the leader Lease (default: $POD_NAMESPACE, else --namespace, else default)")
    .option("--lease-name <name>", "name of the leader Lease", "cas-gateway-operator")
    .option("--xds-listen <host:port>", "ADS gRPC listen address", "127.0.0.1:18000")
    .option("--admin <host:port>", "admin HTTP address (/metrics, /healthz, /readyz)", "127.0.0.1:9090")
    .option("--mailbox-configmap <ns/name:key>", "ConfigMap key holding the mailbox CSV (watched and validated)")
    .option("--xds-ack-timeout-seconds <s>", "an xDS client that has not ACKed its current configuration after this long stops holding Programmed back (the condition says so)", "60")
    .option("--xds-tls-cert <file>", "ADS over mutual TLS: the server's certificate chain (PEM; re-read every minute, a renewed Secret needs no restart)")
    .option("--xds-tls-key <file>", "private key (PEM) of --xds-tls-cert")
    .option("--xds-client-ca <file>", "CA bundle (PEM) that signs the clients' certificates: a client without one is refused")
    .option("--fleet-report-seconds <s>", "each replica publishes its xDS clients' progress in a Lease renewed every third of this; the leader ignores reports older than this", "30");
  addOptions(addEnvoyFlags(cmd), envoyListenerOptions)
    .option("--log-level <level>", "pino log level", "info")
    .action(async (raw: Record<string, unknown>) => {
      const parsed = OperatorFlags.safeParse(raw);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        const flag = i?.path[0] !== undefined ? `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ` : "";
        throw new UsageError(`${flag}${i?.message}`);
      }
      const running = await startOperator(parsed.data);
      process.stdout.write(`operator: xDS on ${parsed.data.xdsListen.host}:${running.xdsPort}, admin on ${parsed.data.admin.host}:${running.adminPort}\n`);
      const stop = () => {
        void running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
