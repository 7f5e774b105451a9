// The per-decision log line (docs/sidecar-contract.md, "Observability"): one JSON line per answer,
// through the production logger, with the request id, the request's method, host and path (no query),
// the decision, its rule IDs, the target site, where the identity came from and the time taken, and
// never a credential. Low-cardinality fields ride in cached pino child bindings; the line must read
// the same whichever way they got there.
import { Writable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import type { DecisionService } from "../../sidecar/authz/decision-service.js";
import { createSidecarLogger } from "../../sidecar/authz/logging.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { envoyCheckRequest } from "./envoy-request.js";

const lines: Record<string, unknown>[] = [];
let svc: DecisionService;

beforeAll(async () => {
  const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const server = new SidecarServer({
    state: new SettableStateSource({ topology: org.topology, health: ALL_HEALTHY, version: org.topology.version }),
    directory: org.directory!,
    affinityKey: Buffer.alloc(32, 7),
    logger: createSidecarLogger({ destination: sink }),
  });
  svc = await server.decisionService();
});

const basic = (user: string) => `Basic ${Buffer.from(`${user}:S3cret-pw`).toString("base64")}`;

async function logged(rid: string, init: Parameters<typeof envoyCheckRequest>[0]): Promise<Record<string, unknown>> {
  await svc.evaluateAny(envoyCheckRequest({ ...init, requestId: rid }), "ext_authz");
  // Lines are written in a batch at the end of the event-loop turn.
  expect(lines.find((l) => l.rid === rid)).toBeUndefined();
  await new Promise((r) => setImmediate(r));
  const line = lines.find((l) => l.rid === rid && l.msg === "decision");
  if (!line) throw new Error(`no decision line for ${rid}`);
  return line;
}

describe("decision log line", () => {
  it("proxy: every field, the path without its query, and no credential", async () => {
    const l = await logged("rid-proxy", { host: "usa.contoso.com", path: "/owa/?ae=Folder&t=IPF.Note", headers: { authorization: basic("jun@contoso.com") } });
    expect(l).toMatchObject({
      level: 30,
      name: "cas-sidecar",
      api: "ext_authz",
      rid: "rid-proxy",
      method: "GET",
      host: "usa.contoso.com",
      path: "/owa/",
      decision: "proxy",
      site: "asia",
      identitySource: "basic",
      msg: "decision",
    });
    expect(typeof l.rules).toBe("string");
    expect((l.rules as string).split(",")).toContain("R-OWA-4");
    expect(typeof l.ms).toBe("number");
    expect(JSON.stringify(l)).not.toMatch(/S3cret|Basic |ae=Folder/);
  });

  it("the same decision twice (a cached child logger) logs the same fields; different ones do not share them", async () => {
    const a = await logged("rid-a", { host: "usa.contoso.com", path: "/owa/", headers: { authorization: basic("jun@contoso.com") } });
    const b = await logged("rid-b", { host: "usa.contoso.com", path: "/owa/", headers: { authorization: basic("jun@contoso.com") } });
    const strip = (l: Record<string, unknown>) => ({ ...l, rid: undefined, time: undefined, ms: undefined });
    expect(strip(a)).toEqual(strip(b));
    // A redirect and an error: no target site, their own decision and rules.
    const eas = await logged("rid-eas", {
      host: "usa.contoso.com",
      path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=1&DeviceType=x",
      headers: { authorization: basic("frank@contoso.com") },
    });
    expect(eas).toMatchObject({ decision: "redirect-451", path: "/Microsoft-Server-ActiveSync", identitySource: "basic" });
    expect(eas.site).toBeUndefined();
    expect(eas.rules).toContain("R-EAS-4");
    const none = await logged("rid-404", { host: "usa.contoso.com", path: "/nothing-here" });
    expect(none).toMatchObject({ decision: "error" });
    expect(none.identitySource).toBeUndefined();
    expect(none.rules).toContain("R-2013-4");
  });

  it("lines queued in one turn come out in order, and flushDecisionLines writes them at once", async () => {
    const rids = Array.from({ length: 600 }, (_, i) => `rid-order-${i}`);
    for (const rid of rids) void svc.evaluateAny(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", requestId: rid }), "ext_authz");
    svc.flushDecisionLines();
    expect(lines.filter((l) => typeof l.rid === "string" && (l.rid as string).startsWith("rid-order-")).map((l) => l.rid)).toEqual(rids);
  });
});
