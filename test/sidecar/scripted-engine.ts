// A scripted stand-in for the decision engine, for tests of the sidecar's own mapping: the test
// decides what decide() returns; the sidecar's parts (request mapping, cookie, pages, response) are real.
import type { DecisionEngine } from "../../sidecar/authz/decision-service.js";
import type { ClientRequest, Decision } from "../../sidecar/decision/types.js";
import type { DirectoryView } from "../../model/directory/types.js";

export interface ScriptedCall {
  req: ClientRequest;
  directory: DirectoryView;
  ids: string[];
  defaultSite?: string;
}

export function scriptedEngine(script: (call: ScriptedCall) => Decision): DecisionEngine & { calls: ScriptedCall[] } {
  const calls: ScriptedCall[] = [];
  const ids = (req: ClientRequest) => {
    const out: { value: string; source: string }[] = [];
    const anchor = req.headers["x-anchormailbox"];
    if (anchor) out.push({ value: anchor, source: "x-anchormailbox" });
    return out;
  };
  return {
    calls,
    identityCandidates: ids,
    decide(req, _t, directory, _h, options) {
      const call: ScriptedCall = { req, directory, ids: ids(req).map((i) => i.value), ...(options?.defaultSite ? { defaultSite: options.defaultSite } : {}) };
      calls.push(call);
      return script(call);
    },
  };
}
