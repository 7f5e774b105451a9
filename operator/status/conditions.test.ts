import { describe, expect, it } from "vitest";
import type { Problem } from "../../model/topology/types.js";
import { computeStatus, desiredConditions, sameStatus } from "./conditions.js";
import { ProgrammedTracker } from "./programmed.js";

const subject = { kind: "VirtualDirectory" as const, namespace: "mail", name: "owa", generation: 3 };
const T0 = "2026-01-01T00:00:00Z";
const T1 = "2026-01-01T00:05:00Z";
const problem = (p: Partial<Problem>): Problem => ({
  kind: "VirtualDirectory",
  name: "owa",
  namespace: "mail",
  field: "spec.server",
  reason: "UnknownServer",
  message: 'ClientAccessServer "x" does not exist',
  severity: "error",
  condition: "ResolvedRefs",
  ...p,
});

describe("status conditions", () => {
  it("a valid, resolved, ACKed object: Accepted, ResolvedRefs and Programmed True with observedGeneration", () => {
    const s = computeStatus(subject, undefined, undefined, [], { state: "Programmed", topologyVersion: "abc" }, T0);
    expect(s.observedGeneration).toBe(3);
    expect(s.conditions.map((c) => [c.type, c.status, c.reason, c.observedGeneration, c.lastTransitionTime])).toEqual([
      ["Accepted", "True", "Accepted", 3, T0],
      ["ResolvedRefs", "True", "ResolvedRefs", 3, T0],
      ["Programmed", "True", "Programmed", 3, T0],
    ]);
  });

  it("keeps lastTransitionTime when a condition's status does not change, moves it when it does", () => {
    const first = computeStatus(subject, undefined, undefined, [], { state: "Pending", topologyVersion: "v1" }, T0);
    const again = computeStatus(subject, first, undefined, [], { state: "Pending", topologyVersion: "v1" }, T1);
    expect(sameStatus(first, again)).toBe(true);
    const programmed = computeStatus(subject, first, undefined, [], { state: "Programmed", topologyVersion: "v1" }, T1);
    expect(programmed.conditions.find((c) => c.type === "Accepted")!.lastTransitionTime).toBe(T0);
    expect(programmed.conditions.find((c) => c.type === "Programmed")!.lastTransitionTime).toBe(T1);
    expect(sameStatus(first, programmed)).toBe(false);
  });

  it("a schema rejection names the field in Accepted=False", () => {
    const cs = desiredConditions(subject, { field: "spec.internalUrl", message: "spec.internalUrl: must be an absolute http:// or https:// URL" }, [], { state: "NoFleet" });
    expect(cs[0]).toMatchObject({ type: "Accepted", status: "False", reason: "Invalid", message: "spec.internalUrl: must be an absolute http:// or https:// URL" });
    expect(cs[2]).toMatchObject({ type: "Programmed", status: "False", reason: "Invalid" });
  });

  it("reference problems give ResolvedRefs=False; semantic ones Accepted=False; warnings their own condition", () => {
    const cs = desiredConditions(
      subject,
      undefined,
      [
        problem({}),
        problem({ condition: "Accepted", reason: "DuplicateService", field: "spec.service", message: "dup" }),
        problem({ severity: "warning", condition: "InsecureUpstreamTLS", reason: "InsecureSkipVerify", field: "spec.tls", message: "off" }),
      ],
      { state: "Programmed", topologyVersion: "v" },
    );
    expect(cs.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "Accepted=False/DuplicateService",
      "ResolvedRefs=False/UnknownServer",
      "Programmed=False/Invalid",
      "InsecureUpstreamTLS=True/InsecureSkipVerify",
    ]);
    expect(cs[1].message).toContain("spec.server");
  });

  it("without fleet progress Programmed is Unknown, never a made-up True", () => {
    expect(desiredConditions(subject, undefined, [], { state: "NoFleet" })[2]).toMatchObject({ status: "Unknown", reason: "NoFleetProgress" });
  });
});

describe("ProgrammedTracker", () => {
  it("an object is Programmed once the fleet ACKs the version that first contained its revision, or a later one", () => {
    const t = new ProgrammedTracker();
    t.observeTopology("v1", [{ key: "a", revision: "1" }, { key: "b", revision: "1" }]);
    expect(t.stateOf("a")).toEqual({ state: "Pending", topologyVersion: "v1" });
    t.observeAck("v1");
    expect(t.stateOf("a").state).toBe("Programmed");
    t.observeTopology("v2", [{ key: "a", revision: "2" }, { key: "b", revision: "1" }]);
    expect(t.stateOf("a")).toEqual({ state: "Pending", topologyVersion: "v2" });
    expect(t.stateOf("b").state).toBe("Programmed");
    t.observeAck("unknown-from-another-process");
    expect(t.stateOf("a").state).toBe("Pending");
    t.observeTopology("v3", [{ key: "a", revision: "2" }, { key: "b", revision: "1" }, { key: "c", revision: "1" }]);
    t.observeAck("v3");
    expect(["a", "b", "c"].map((k) => t.stateOf(k).state)).toEqual(["Programmed", "Programmed", "Programmed"]);
    t.observeTopology("v4", [{ key: "a", revision: "2" }]);
    expect(t.stateOf("c")).toEqual({ state: "Pending", topologyVersion: undefined }); // removed objects are forgotten
  });
});
