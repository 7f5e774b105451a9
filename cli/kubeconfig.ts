// Where the operator finds its cluster, and a clear stop when there is none. client-node's
// loadFromDefault() falls back to http://localhost:8080 when nothing is configured, and the operator
// then retried for ever with "HTTP protocol is not allowed when skipTLSVerify is not set".
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

export const NO_CLUSTER =
  "no Kubernetes cluster to connect to: no --kubeconfig, $KUBECONFIG is unset, there is no ~/.kube/config and this is not a pod " +
  "(KUBERNETES_SERVICE_HOST is unset). Pass --kubeconfig FILE (e.g. `kind get kubeconfig > kubeconfig.yaml`), run the operator in " +
  "the cluster with the Helm chart, or use `cas-gateway standalone --manifests DIR --directory FILE` to run from files without a cluster";

/** The kubeconfig the operator uses: --kubeconfig, else $KUBECONFIG, ~/.kube/config or the in-cluster service account. */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    if (!existsSync(file)) throw new KubeConfigError(`--kubeconfig ${file}: no such file`);
    kc.loadFromFile(file);
  } else {
    const fromEnv = (env.KUBECONFIG ?? "").split(delimiter).some((f) => f !== "" && existsSync(f));
    const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT);
    if (!fromEnv && !inCluster && !existsSync(join(home, ".kube", "config"))) throw new KubeConfigError(NO_CLUSTER);
    kc.loadFromDefault();
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`the kubeconfig has no current cluster; set one with \`kubectl config use-context NAME\` or pass --kubeconfig`);
  if (cluster.server.startsWith("http://") && !cluster.skipTLSVerify) {
    throw new KubeConfigError(
      `cluster "${cluster.name}" is at ${cluster.server}, plain HTTP, which the Kubernetes client refuses unless the kubeconfig sets insecure-skip-tls-verify: true; use the API server's https:// address (\`kubectl config view --minify\`)`,
    );
  }
  return kc;
}
