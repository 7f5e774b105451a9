// R-LB-8 (docs/rules.md): NTLM and Negotiate authenticate a connection. The first request of such a
// connection decides it (by what names a mailbox without the handshake, else the receiving site), to
// one server; the AUTHENTICATE message's user never moves it; later requests follow the binding.
import { beforeAll, describe, expect, it } from "vitest";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import type { Topology } from "../../model/topology/types.js";
import type { DirectoryView } from "../../model/directory/types.js";
import { ALL_HEALTHY, healthFromDown, type HealthView } from "../../model/health.js";
import { decide } from "./engine.js";
import { NTLM_NEGOTIATE as NEGOTIATE, httpReq, ntlmAuthenticate as AUTHENTICATE } from "./test-org.js";
import type { ClientRequest, ConnectionBinding, Decision } from "./types.js";

const EXAMPLE = new URL("../../examples/contoso/", import.meta.url).pathname;
let contoso: Topology;
let dir: DirectoryView;
beforeAll(async () => {
  const org = await loadOrganisation(EXAMPLE, `${EXAMPLE}mailboxes.csv`);
  contoso = org.topology;
  dir = org.directory!;
});
const KEY = "203.0.113.7:50001 mail.contoso.com";
const ews = (authorization: string | undefined, over: Partial<ClientRequest> = {}, extra: Record<string, string> = {}) =>
  httpReq("mail.contoso.com", "/EWS/Exchange.asmx", { method: "POST", sourceAddress: "203.0.113.7", sourcePort: 50001, headers: { ...(authorization ? { authorization } : {}), ...extra }, ...over });
const run = (req: ClientRequest, health: HealthView = ALL_HEALTHY): Decision => decide(req, contoso, dir, health);
const bindingOf = (d: Decision): ConnectionBinding => {
  if ((d.outcome !== "local" && d.outcome !== "proxy") || !d.targetServer) throw new Error(`no server: ${JSON.stringify(d)}`);
  return { service: "Ews", site: d.targetSite, server: d.targetServer, decidedBy: d.identity?.source ?? "the receiving site" };
};

describe("R-LB-8: connection-bound authentication", () => {
  it("R-LB-8: the negotiate message (no user) goes to one server of the receiving site, never a pool", () => {
    const d = run(ews(NEGOTIATE, { connection: { key: KEY } }));
    expect(d).toMatchObject({ outcome: "local", targetSite: "usa", targetServer: expect.any(String) });
    expect(d.rules).toContain("R-LB-8");
    expect(d.trace.join("\n")).toContain(`first NTLM/Negotiate request on connection ${KEY}`);
  });

  it("R-LB-8: the AUTHENTICATE message of a cross-site user stays on the server the connection was bound to", () => {
    const first = run(ews(NEGOTIATE, { connection: { key: KEY } }));
    const bound = bindingOf(first);
    const second = run(ews(AUTHENTICATE("jun"), { connection: { key: KEY, bound } }));
    expect(second).toMatchObject({ outcome: "local", targetSite: "usa", targetServer: bound.server });
    expect(second.rules).toEqual(["R-LB-8"]);
    // Later requests without credentials on the authenticated connection follow it too.
    expect(run(ews(undefined, { connection: { key: KEY, bound } }))).toMatchObject({ targetServer: bound.server });
  });

  it("R-LB-8: a lone AUTHENTICATE (no connection known) is still routed by its user; on a connection it is not", () => {
    expect(run(ews(AUTHENTICATE("jun")))).toMatchObject({ targetSite: "asia", identity: { source: "ntlm" } });
    const d = run(ews(AUTHENTICATE("jun"), { connection: { key: KEY } }));
    expect(d).toMatchObject({ outcome: "local", targetSite: "usa" });
    expect(d.identity).toBeUndefined();
  });

  it("R-LB-8: a first request that names the mailbox without the handshake (X-AnchorMailbox, URL) decides the connection", () => {
    const d = run(ews(NEGOTIATE, { connection: { key: KEY } }, { "x-anchormailbox": "jun@contoso.com" }));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "asia", targetServer: expect.any(String) });
    expect(d.rules).toEqual(expect.arrayContaining(["R-LB-8", "R-EWS-2"]));
    const mapi = run(httpReq("mail.contoso.com", "/mapi/emsmdb/?MailboxId=155bad9d-288c-1bed-bb3f-c799d47b944f@contoso.com", { method: "POST", headers: { authorization: NEGOTIATE }, connection: { key: KEY } }));
    expect(mapi).toMatchObject({ outcome: "proxy", targetSite: "asia", targetServer: "asia-e2016-01" });
  });

  it("R-LB-8: when the bound server goes down the connection is decided afresh (the client authenticates again)", () => {
    const bound = bindingOf(run(ews(NEGOTIATE, { connection: { key: KEY } })));
    const d = run(ews(NEGOTIATE, { connection: { key: KEY, bound } }), healthFromDown([bound.server]));
    // usa's only 2013+ EWS server is down: the fresh decision is a clear 503, never the dead server.
    expect(d.outcome === "local" || d.outcome === "proxy" ? d.targetServer : undefined).not.toBe(bound.server);
    expect(d.trace.join("\n")).toContain("decided afresh");
  });

  it("R-LB-8: Basic is per request: no connection rules apply", () => {
    const basicAuth = `Basic ${Buffer.from("jun@contoso.com:x").toString("base64")}`;
    const d = run(ews(basicAuth, { connection: { key: KEY } }));
    expect(d).toMatchObject({ targetSite: "asia" });
    expect(d.rules).not.toContain("R-LB-8");
  });
});
