// R-LB-8 property (fast-check) through the sidecar's in-process pipeline on examples/contoso: over
// random sequences of requests on a few reused downstream connections (NTLM negotiate, AUTHENTICATE
// of any user, Basic, nothing; any X-AnchorMailbox), once a connection's NTLM/Negotiate request was
// sent to a server, every later request of that service on that connection goes to the same server.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarServer } from "../../sidecar/authz/server.js";
import type { DecisionService } from "../../sidecar/authz/decision-service.js";
import { NTLM_NEGOTIATE as NEGOTIATE, ntlmAuthenticate } from "../../sidecar/decision/test-org.js";
import { contosoSidecar } from "./contoso-sidecar.js";
import { envoyCheckRequest } from "./envoy-request.js";

let server: SidecarServer;
let svc: DecisionService;
beforeAll(async () => {
  server = await contosoSidecar(3);
  svc = await server.decisionService();
});
afterAll(async () => {
  await server.stop();
});

const USERS = ["alice", "frank", "jun", "kenji", "dave", "nobody"];
const auth = fc.oneof(
  fc.constant(NEGOTIATE),
  fc.constantFrom(...USERS).map((u) => ntlmAuthenticate(u)),
  fc.constantFrom(...USERS).map((u) => `Basic ${Buffer.from(`${u}@contoso.com:x`).toString("base64")}`),
  fc.constant(undefined),
);
const step = fc.record({
  conn: fc.integer({ min: 0, max: 2 }),
  path: fc.constantFrom("/EWS/Exchange.asmx", "/owa/", "/mapi/emsmdb/", "/rpc/rpcproxy.dll?mbx01.europe.contoso.com:6001"),
  method: fc.constantFrom("POST", "GET", "RPC_IN_DATA"),
  auth,
  anchor: fc.option(fc.constantFrom(...USERS).map((u) => `${u}@contoso.com`), { nil: undefined }),
});

describe("R-LB-8: reused connections (property)", () => {
  it("R-LB-8: a connection bound by its NTLM/Negotiate request keeps its server for that service, whatever later requests carry", async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 2, maxLength: 12 }), async (steps) => {
        round++;
        const bound = new Map<string, string>(); // `${conn} ${service}` → server
        for (const s of steps) {
          const port = 30000 + ((round * 3 + s.conn) % 30000);
          const headers: Record<string, string> = {};
          if (s.auth) headers.authorization = s.auth;
          if (s.anchor) headers["x-anchormailbox"] = s.anchor;
          const ev = await svc.evaluateRaw(envoyCheckRequest({ host: "mail.contoso.com", method: s.method, path: s.path, headers, source: "198.51.100.50", sourcePort: port }), "ext_authz");
          const d = ev.decision;
          const service = d.service ?? "?";
          const key = `${port} ${service}`;
          const server = d.outcome === "local" || d.outcome === "proxy" ? d.targetServer : undefined;
          const was = bound.get(key);
          if (was !== undefined) {
            expect(server, `${s.method} ${s.path} ${s.auth?.slice(0, 12)} on a connection bound to ${was}`).toBe(was);
            expect(d.rules).toContain("R-LB-8");
          } else if (server !== undefined && s.auth !== undefined && /^(ntlm|negotiate)\b/i.test(s.auth)) {
            bound.set(key, server);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
