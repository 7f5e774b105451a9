// The operator's arguments as the rendered chart gives them, parsed as the operator parses them:
// what tests translate to see the Envoy configuration a chart install serves.
import { OperatorFlags } from "../../cli/commands/operator.js";
import { container, find, type K8sObject } from "./helm.js";

/** The operator container's args → OperatorFlags (as commander would hand them over). */
export function operatorFlags(objs: K8sObject[]): OperatorFlags {
  const args = container(find(objs, "Deployment", "-operator"), "operator").args as string[];
  const raw: Record<string, unknown> = {};
  for (const a of args.slice(1)) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m) continue;
    const key = m[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    raw[key] = m[2] ?? true;
  }
  // $(POD_NAME)-style references are the kubelet's; give them values.
  return OperatorFlags.parse({ ...raw, identity: "pod-0", leaseNamespace: "cas-system", stripResponseHeader: [] });
}
