// R-LB-8 through the sidecar's gRPC Check API on examples/contoso: a downstream connection (source
// address and port in the CheckRequest) that authenticates with NTLM is decided by its first request
// and stays on one server for the whole handshake and after; the memory's size is a metric.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarServer } from "../../sidecar/authz/server.js";
import { NTLM_NEGOTIATE as NEGOTIATE, ntlmAuthenticate as AUTHENTICATE } from "../../sidecar/decision/test-org.js";
import { contosoSidecar } from "./contoso-sidecar.js";
import { authzClient, checkResponseHeaders as hdrs, envoyCheckRequest, type EnvoyRequestInit } from "./envoy-request.js";

let server: SidecarServer;
let client: ReturnType<typeof authzClient>;
const check = (init: EnvoyRequestInit) => client.check(envoyCheckRequest(init));

beforeAll(async () => {
  server = await contosoSidecar(9, { connectionMemory: { maxEntries: 1000, idleMs: 60_000 } });
  client = authzClient(await server.start(0));
});
afterAll(async () => {
  client.close();
  await server.stop();
});

describe("R-LB-8 through the gRPC Check API (contoso)", () => {
  it("R-LB-8: jun's (asia) NTLM handshake on one connection stays on the receiving site's one server; a new connection is decided on its own", async () => {
    const conn = { host: "mail.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", source: "198.51.100.20", sourcePort: 40100 };
    const t1 = await check({ ...conn, headers: { authorization: NEGOTIATE } });
    expect(hdrs(t1)).toMatchObject({ "x-cas-decision": "local", "x-cas-target-site": "usa" });
    const server1 = hdrs(t1)["x-cas-target-server"];
    expect(server1).toBeTruthy();
    expect(hdrs(t1)["x-cas-rules"]).toContain("R-LB-8");
    const t3 = await check({ ...conn, headers: { authorization: AUTHENTICATE("jun") } });
    expect(hdrs(t3)).toMatchObject({ "x-cas-target-site": "usa", "x-cas-target-server": server1, "x-cas-rules": "R-LB-8" });
    const after = await check({ ...conn, headers: {} });
    expect(hdrs(after)["x-cas-target-server"]).toBe(server1);
    // Another connection from the same client with X-AnchorMailbox: decided by it, to asia.
    const other = await check({ ...conn, sourcePort: 40101, headers: { authorization: NEGOTIATE, "x-anchormailbox": "jun@contoso.com" } });
    expect(hdrs(other)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia" });
  });

  it("R-LB-8: the number of remembered connections is a metric", async () => {
    const text = await server.metrics.registry.metrics();
    const m = /cas_sidecar_connections_remembered (\d+)/.exec(text);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(2);
    expect(text).toContain("cas_sidecar_connections_forgotten_total");
  });

  it("R-LB-8: Outlook Anywhere's two channels, each its own NTLM connection, meet on one server of the site they name", async () => {
    const base = { host: "usa.contoso.com", path: "/rpc/rpcproxy.dll?mbx01.europe.contoso.com:6001", source: "198.51.100.21" };
    const inn = await check({ ...base, method: "RPC_IN_DATA", sourcePort: 40200, headers: { authorization: NEGOTIATE } });
    const out = await check({ ...base, method: "RPC_OUT_DATA", sourcePort: 40201, headers: { authorization: NEGOTIATE } });
    expect(hdrs(inn)["x-cas-target-site"]).toBe("europe");
    expect(hdrs(out)["x-cas-target-server"]).toBe(hdrs(inn)["x-cas-target-server"]);
    const inn3 = await check({ ...base, method: "RPC_IN_DATA", sourcePort: 40200, headers: { authorization: AUTHENTICATE("alice") } });
    expect(hdrs(inn3)["x-cas-target-server"]).toBe(hdrs(inn)["x-cas-target-server"]);
  });
});
