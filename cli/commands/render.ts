// `cas-gateway render --manifests DIR [--json] [options]` (or `render --bootstrap`, no manifests): translate an organisation into the Envoy
// resources the control plane would serve (listeners, routes, clusters, endpoints), as a
// DiscoveryResponse-like listing per type, in YAML (default) or JSON. Exit 1, with
// file:line:column errors on stderr, when the manifests are bad or a resource fails Envoy's rules.
import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { z } from "zod";
import { formatError } from "../../operator/provider/manifests.js";
import { loadOrganisation, locateProblem } from "../../operator/provider/organisation.js";
import type { Problem } from "../../model/topology/types.js";
import {
  bootstrap,
  resolveOptions,
  resourcesToYaml,
  toDiscoveryListing,
  translate,
  type TranslateOptions,
} from "../../operator/xds/translate/index.js";
import { addEnvoyFlags, envoyFlagShape, envoyTranslateOptions, tlsPair } from "../envoy-flags.js";
import { HostPort } from "../flags.js";
import { addOptions, envoyListenerOptions, envoyListenerSettings } from "../options/index.js";

export const RenderFlags = z
  .object({
    manifests: z.string().min(1, "--manifests needs a directory").optional(),
    namespace: z.string().min(1).optional(),
    json: z.boolean().optional(),
    ...envoyFlagShape,
    tlsSds: z.string().min(1).optional(),
    extAuthzTimeoutMs: z.coerce.number().int().min(1).optional(),
    maxRequestBody: z.coerce.number().int().min(1).optional(),
    caFile: z.string().min(1).optional(),
    extProc: z.boolean().optional(),
    ...envoyListenerOptions.shape,
    listenAddress: z.string().min(1).optional(),
    bootstrap: z.boolean().optional(),
    nodeId: z.string().min(1).default("cas-gateway"),
    xds: HostPort.prefault("127.0.0.1:18000"),
  })
  .refine(...tlsPair)
  .refine((f) => !(f.tlsSds && f.tlsCert), { message: "--tls-sds and --tls-cert/--tls-key are alternatives" })
  // --bootstrap prints Envoy's static start-up file, which holds no organisation.
  .refine((f) => f.bootstrap || f.manifests !== undefined, { message: "--manifests <dir> is required (except with --bootstrap)", path: ["manifests"] });
export type RenderFlags = z.input<typeof RenderFlags>;

export interface RenderResult {
  /** 2: the command line is wrong; 1: the organisation or an option value is. */
  readonly exitCode: 0 | 1 | 2;
  readonly stdout: string;
  readonly stderr: readonly string[];
}

export function translateOptionsFromFlags(f: z.output<typeof RenderFlags>): TranslateOptions {
  return {
    ...envoyTranslateOptions(f),
    ...(f.tlsSds ? { tls: { sdsSecret: f.tlsSds } } : {}),
    ...(f.extAuthzTimeoutMs !== undefined ? { extAuthzTimeoutMs: f.extAuthzTimeoutMs } : {}),
    ...(f.maxRequestBody !== undefined ? { maxRequestBodyBytes: f.maxRequestBody } : {}),
    ...(f.caFile ? { upstreamCaFile: f.caFile } : {}),
    ...(f.extProc !== undefined ? { extProc: f.extProc } : {}),
    ...envoyListenerSettings(f),
    ...(f.listenAddress ? { listenAddress: f.listenAddress } : {}),
  };
}

export async function runRender(input: RenderFlags): Promise<RenderResult> {
  const parsed = RenderFlags.safeParse(input);
  if (!parsed.success) {
    const stderr = parsed.error.issues.map((i) => `render: ${i.path.join(".") || "flags"}: ${i.message}`);
    return { exitCode: 2, stdout: "", stderr: [...stderr, "(run 'cas-gateway render --help' for the options)"] };
  }
  const f = parsed.data;
  const manifests = f.manifests ?? "";
  if (f.bootstrap) {
    const b = bootstrap({ nodeId: f.nodeId, nodeCluster: "cas-gateway", xds: { address: f.xds.host, port: f.xds.port } });
    return { exitCode: 0, stdout: f.json ? b.json : b.yaml, stderr: [] };
  }
  try {
    if (!(await stat(manifests)).isDirectory()) throw new Error("not a directory");
  } catch (err) {
    return { exitCode: 1, stdout: "", stderr: [`${manifests}: cannot read manifest directory: ${err instanceof Error ? err.message : String(err)}`] };
  }
  const options = translateOptionsFromFlags(f);
  try {
    resolveOptions(options);
  } catch (err) {
    return { exitCode: 1, stdout: "", stderr: [`render: bad options: ${err instanceof Error ? err.message : String(err)}`] };
  }
  const org = await loadOrganisation(manifests, undefined, f.namespace ? { defaultNamespace: f.namespace } : {});
  const stderr = [...org.errors.map(formatError), ...org.warnings.map((w) => formatError({ ...w, message: `warning: ${w.message}` }))];
  if (org.errors.length > 0) return { exitCode: 1, stdout: "", stderr };
  const res = translate(org.topology, options);
  for (const p of res.problems) {
    if (p.kind === "GatewayOptions") stderr.push(`render: options: ${p.message}`);
    else stderr.push(formatError(locateProblem(org.manifests, p as Problem)));
  }
  const stdout = f.json ? `${JSON.stringify(toDiscoveryListing(res), null, 2)}\n` : resourcesToYaml(res);
  return { exitCode: res.problems.some((p) => p.severity === "error") ? 1 : 0, stdout, stderr };
}

export function register(program: Command): void {
  const cmd = program
    .command("render")
    .description(
      "Translate an organisation into the Envoy resources the control plane serves (listeners, routes, clusters, endpoints), encoded and checked against Envoy's protos; prints a listing per resource type.",
    )
    .option("-m, --manifests <dir>", "directory of casgateway.io/v1alpha1 manifests (read recursively; required except with --bootstrap)")
    .option("-n, --namespace <ns>", "namespace for manifests that name none")
    .option("--json", "print JSON (a DiscoveryResponse-like listing per type) instead of YAML");
  addOptions(addEnvoyFlags(cmd), envoyListenerOptions)
    .option("--tls-sds <name>", "front-door certificate as an SDS secret served over ADS")
    .option("--ext-authz-timeout-ms <ms>", "ext_authz gRPC timeout (default 1000)")
    .option("--max-request-body <bytes>", "largest request body buffered for ext_authz (default 65536)")
    .option("--ca-file <file>", "CA bundle for upstream certificate validation (an older name of --upstream-ca)")
    .option("--ext-proc", "wire the sidecar's ext_proc in for the OWA/ECP/EWS response phase")
    .option("--listen-address <ip>", "address the listeners bind to (default 0.0.0.0)")
    .option("--bootstrap", "print an Envoy bootstrap (ADS to --xds) instead of the resources")
    .option("--node-id <id>", "Envoy node id for --bootstrap", "cas-gateway")
    .option("--xds <host:port>", "control plane ADS address for --bootstrap", "127.0.0.1:18000")
    .action(async (opts: RenderFlags) => {
      const r = await runRender(opts);
      for (const l of r.stderr) process.stderr.write(`${l}\n`);
      process.stdout.write(r.stdout);
      process.exitCode = r.exitCode;
    });
}
