// Pure: what an object's status should say, from validation rejections, topology problems and fleet
// progress. Conditions follow the Kubernetes convention (metav1.Condition): lastTransitionTime only
// moves when the status of that condition changes; observedGeneration is the generation the
// condition was computed from. Accepted, ResolvedRefs and Programmed are always present (so printer
// columns and Argo CD / kstatus health checks can rely on them); warnings add their own types.
import type { Condition, Kind } from "../../crds/index.js";
import { canonicalJson } from "../../model/topology/build.js";
import type { Problem } from "../../model/topology/types.js";

export const CONDITION_ORDER = ["Accepted", "ResolvedRefs", "Programmed"] as const;

export type DesiredCondition = Omit<Condition, "lastTransitionTime">;

export interface StatusSubject {
  readonly kind: Kind;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly generation: number | undefined;
}

export interface SubjectRejection {
  readonly field: string;
  readonly message: string;
}

export type ProgrammedState =
  | { readonly state: "Programmed"; readonly topologyVersion: string; readonly fleet?: FleetNote }
  | { readonly state: "Pending"; readonly topologyVersion: string | undefined; readonly fleet?: FleetNote }
  | { readonly state: "NoFleet" };

/** Who the fleet's progress counted (every operator replica's ADS streams), for the message. */
export interface FleetNote {
  readonly clients: number;
  readonly replicas: number;
  /** Clients left out because they did not ACK within the bound. */
  readonly lagging: number;
  readonly ackTimeoutMs: number;
}

/**
 * Said only when clients were left out: client counts in every message would rewrite every
 * object's status each time an Envoy connects or goes.
 */
function fleetNote(n: FleetNote | undefined): string {
  if (!n || n.lagging === 0) return "";
  const on = n.replicas > 1 ? ` on ${n.replicas} operator replicas` : "";
  return ` (${n.lagging} of ${n.clients} xDS clients${on} left out: no ACK within ${Math.round(n.ackTimeoutMs / 1000)} s)`;
}

export interface ObjectStatus {
  readonly observedGeneration?: number;
  readonly conditions: Condition[];
}

/** Conditions an object should have (without transition times). */
export function desiredConditions(
  subject: StatusSubject,
  rejection: SubjectRejection | undefined,
  problems: readonly Problem[],
  programmed: ProgrammedState,
): DesiredCondition[] {
  const gen = subject.generation !== undefined ? { observedGeneration: subject.generation } : {};
  const cond = (type: string, status: Condition["status"], reason: string, message: string): DesiredCondition => ({
    type,
    status,
    reason,
    message: message.slice(0, 32768),
    ...gen,
  });
  if (rejection) {
    return [
      cond("Accepted", "False", "Invalid", `${rejection.field}: ${rejection.message}`.replace(/^([^:]+): \1: /, "$1: ")),
      cond("ResolvedRefs", "Unknown", "NotAccepted", "references are not checked until the object is valid"),
      cond("Programmed", "False", "Invalid", "the object is invalid and is not part of the gateway configuration"),
    ];
  }
  const errors = problems.filter((p) => p.severity === "error");
  const acceptedProblems = errors.filter((p) => p.condition === "Accepted");
  const refProblems = errors.filter((p) => p.condition !== "Accepted");
  const describe = (ps: readonly Problem[]) => ps.map((p) => `${p.field}: ${p.message}`).join("; ");
  const out: DesiredCondition[] = [];
  out.push(
    acceptedProblems.length > 0
      ? cond("Accepted", "False", acceptedProblems[0].reason, describe(acceptedProblems))
      : cond("Accepted", "True", "Accepted", "the object is valid"),
  );
  out.push(
    refProblems.length > 0
      ? cond("ResolvedRefs", "False", refProblems[0].reason, describe(refProblems))
      : cond("ResolvedRefs", "True", "ResolvedRefs", "all references resolve"),
  );
  if (errors.length > 0) {
    out.push(cond("Programmed", "False", "Invalid", "the object has errors (see Accepted/ResolvedRefs) and is left out of the Envoy configuration"));
  } else if (programmed.state === "Programmed") {
    out.push(cond("Programmed", "True", "Programmed", `every connected Envoy has ACKed topology version ${programmed.topologyVersion}${fleetNote(programmed.fleet)}`));
  } else if (programmed.state === "Pending") {
    out.push(
      cond(
        "Programmed",
        "False",
        "Pending",
        programmed.topologyVersion
          ? `waiting for the Envoy fleet to ACK topology version ${programmed.topologyVersion}${fleetNote(programmed.fleet)}`
          : "waiting for the first topology that contains this generation",
      ),
    );
  } else {
    out.push(cond("Programmed", "Unknown", "NoFleetProgress", "this operator has no xDS fleet progress to report (control plane not running)"));
  }
  // Warnings: one condition per type, True while the warning holds.
  const warnings = problems.filter((p) => p.severity === "warning");
  const byType = new Map<string, Problem[]>();
  for (const w of warnings) byType.set(w.condition, [...(byType.get(w.condition) ?? []), w]);
  for (const type of [...byType.keys()].sort()) {
    const ws = byType.get(type)!;
    out.push(cond(type, "True", ws[0].reason, describe(ws)));
  }
  return out;
}

/** Keep lastTransitionTime for conditions whose status did not change; `now` for the others. */
export function mergeConditions(existing: readonly Condition[] | undefined, desired: readonly DesiredCondition[], now: string): Condition[] {
  const old = new Map((existing ?? []).map((c) => [c.type, c]));
  return desired.map((d) => {
    const prev = old.get(d.type);
    const lastTransitionTime = prev && prev.status === d.status && prev.lastTransitionTime ? prev.lastTransitionTime : now;
    return { ...d, lastTransitionTime };
  });
}

/** The full status an object should have, given what it has now. */
export function computeStatus(
  subject: StatusSubject,
  existing: ObjectStatus | undefined,
  rejection: SubjectRejection | undefined,
  problems: readonly Problem[],
  programmed: ProgrammedState,
  now: string,
): ObjectStatus {
  const conditions = mergeConditions(existing?.conditions, desiredConditions(subject, rejection, problems, programmed), now);
  return subject.generation !== undefined ? { observedGeneration: subject.generation, conditions } : { conditions };
}

/** Whether two statuses say the same thing (compared canonically; unknown extra fields ignored). */
export function sameStatus(a: ObjectStatus | undefined, b: ObjectStatus | undefined): boolean {
  return statusFingerprint(a, true) === statusFingerprint(b, true);
}

/**
 * A status's fields that the gateway sets, as canonical JSON; without transition times when
 * `withTransitionTimes` is false (what a status says, whatever second it was computed in).
 */
export function statusFingerprint(s: ObjectStatus | undefined, withTransitionTimes: boolean): string {
  return canonicalJson({
    observedGeneration: s?.observedGeneration,
    conditions: (s?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: c.observedGeneration,
      ...(withTransitionTimes ? { lastTransitionTime: c.lastTransitionTime } : {}),
    })),
  });
}

/** Problems that belong to one object. */
export function problemsFor(problems: readonly Problem[], s: StatusSubject): Problem[] {
  return problems.filter((p) => p.kind === s.kind && p.name === s.name && (p.namespace === undefined || p.namespace === s.namespace));
}

/** Problems grouped by object (kind/namespace/name), for many look-ups. */
export function indexProblems(problems: readonly Problem[]): (s: StatusSubject) => Problem[] {
  const byName = new Map<string, Problem[]>();
  for (const p of problems) {
    const k = `${p.kind}/${p.name}`;
    const list = byName.get(k);
    if (list) list.push(p);
    else byName.set(k, [p]);
  }
  return (s) => (byName.get(`${s.kind}/${s.name}`) ?? []).filter((p) => p.namespace === undefined || p.namespace === s.namespace);
}
