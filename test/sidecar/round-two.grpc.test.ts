// Rules of the second round through the sidecar's gRPC Check API on examples/contoso (docs/rules.md):
// Exchange 2003's paths (R-OWA-6, R-OWA-9, R-EWS-3), Outlook Anywhere (R-OUT-2, R-OUT-3), offline
// address books (R-OAB-2).
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { buildTopology } from "../../model/topology/build.js";
import type { ApiObject } from "../../crds/index.js";
import { API_VERSION } from "../../crds/index.js";
import { CsvDirectory } from "../../model/directory/csv-directory.js";
import { decodeGatewayState, gatewayStateResource } from "../../model/gateway-state.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { NTLM_NEGOTIATE } from "../../sidecar/decision/test-org.js";
import { contosoSidecar } from "./contoso-sidecar.js";
import { authzClient, checkResponseHeaders as hdrs, envoyCheckRequest, type EnvoyRequestInit } from "./envoy-request.js";

const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:P@ssw0rd`).toString("base64")}` });
let server: SidecarServer;
let client: ReturnType<typeof authzClient>;
const check = (init: EnvoyRequestInit) => client.check(envoyCheckRequest(init));

beforeAll(async () => {
  server = await contosoSidecar(7);
  client = authzClient(await server.start(0));
});
afterAll(async () => {
  client.close();
  await server.stop();
});

describe("Exchange 2003's paths through the gRPC Check API (contoso)", () => {
  it("R-OWA-6, R-OWA-9: dave (Exchange 2003) at /exchange gets the single sign-on form to the 2003 front end", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/exchange/dave/", headers: basic("dave@contoso.com") });
    expect(hdrs(r)["x-cas-decision"]).toBe("redirect-sso");
    expect(hdrs(r)["x-cas-rules"]).toBe("R-OWA-6,R-OWA-9");
    expect(r.denied_response?.body).toContain('action="https://legacy.contoso.com/exchweb/bin/auth/owaauth.dll"');
  });

  it("R-OWA-6: alice (Exchange 2010) at /exchange and /exchweb is sent to usa's OWA with a 302", async () => {
    for (const path of ["/exchange/", "/exchweb/bin/auth/owalogon.asp"]) {
      const r = await check({ host: "usa.contoso.com", path, headers: basic("alice@contoso.com") });
      expect(r.denied_response?.status?.code, path).toBe("Found");
      expect(hdrs(r)["location"]).toMatch(/^https:\/\/[^/]+\/owa/);
      expect(hdrs(r)["x-cas-rules"]).toBe("R-OWA-6");
    }
  });

  it("R-EWS-3: dave's /public goes to his Exchange 2003 server's /Public; alice's /public to OWA", async () => {
    const r = await check({ host: "usa.contoso.com", path: "/public/", headers: basic("dave@contoso.com") });
    expect(r.ok_response).toBeTruthy();
    expect(hdrs(r)).toMatchObject({ "x-cas-target-server": "usa-e2003", "x-cas-cluster": "server/usa-e2003/public" });
    expect(hdrs(r)["x-cas-rules"]).toContain("R-EWS-3");
    const a = await check({ host: "usa.contoso.com", path: "/public/", headers: basic("alice@contoso.com") });
    expect(a.denied_response?.status?.code).toBe("Found");
    expect(hdrs(a)["x-cas-rules"]).toBe("R-EWS-3");
  });
});

describe("Outlook Anywhere through the gRPC Check API (contoso)", () => {
  it("R-OUT-2, R-OUT-3: RPC_IN_DATA naming europe's mailbox server, NTLM negotiate only, goes to europe", async () => {
    const r = await check({ host: "usa.contoso.com", method: "RPC_IN_DATA", path: "/rpc/rpcproxy.dll?mbx01.europe.contoso.com:6001", headers: { authorization: NTLM_NEGOTIATE } });
    expect(r.ok_response).toBeTruthy();
    expect(hdrs(r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "europe" });
    expect(hdrs(r)["x-cas-rules"]).toContain("R-OUT-2");
    expect(hdrs(r)["x-cas-rules"]).toContain("R-OUT-3");
  });

  it("R-OUT-3: both channels of alice's session get the same server", async () => {
    const one = async (method: string) => hdrs(await check({ host: "usa.contoso.com", method, path: "/rpc/rpcproxy.dll?cas01.usa.contoso.com:6001", headers: basic("alice@contoso.com") }));
    const a = await one("RPC_IN_DATA");
    const b = await one("RPC_OUT_DATA");
    expect(a["x-cas-target-server"]).toBeTruthy();
    expect(b["x-cas-target-server"]).toBe(a["x-cas-target-server"]);
    expect(a["x-cas-rules"]).toContain("R-OUT-3");
  });
});

describe("offline address books through the gRPC Check API (contoso + an OAB on db-asia-2016)", () => {
  it("R-OAB-2: a download of asia's 2013+ OAB at usa's front door is proxied to asia's active server; R-OAB-1 otherwise", async () => {
    const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
    const objs = (await loadManifestDir("examples/contoso")).objects.map((o) => structuredClone(o.object)) as ApiObject[];
    for (const o of objs) {
      if (o.kind === "MailboxDatabase" && o.metadata.name === "db-asia-2016") {
        o.spec.offlineAddressBooks = [{ guid: "8a3f3e5e-1c1e-4d55-9c62-2f3c2b8a4e11", name: "Asia OAB", generatingMailbox: "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com" }];
      }
    }
    const topology = buildTopology(objs);
    const s2 = new SidecarServer({ state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }), directory: org.directory!, affinityKey: Buffer.alloc(32, 8), logger: pino({ level: "silent" }) });
    const c2 = authzClient(await s2.start(0));
    try {
      const r = await c2.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/OAB/8a3f3e5e-1c1e-4d55-9c62-2f3c2b8a4e11/oab.xml" }));
      expect(hdrs(r)).toMatchObject({ "x-cas-decision": "proxy", "x-cas-target-site": "asia", "x-cas-target-server": "asia-e2016-01" });
      expect(hdrs(r)["x-cas-rules"]).toContain("R-OAB-2");
      const other = await c2.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/OAB/11111111-2222-3333-4444-555555555555/oab.xml" }));
      expect(hdrs(other)["x-cas-target-site"]).toBe("usa");
      expect(hdrs(other)["x-cas-rules"]).toContain("R-OAB-1");
    } finally {
      c2.close();
      await s2.stop();
    }
  });
});

describe("mailboxes in Exchange Online through the gRPC Check API (contoso + an OrganizationRelationship, sent as GatewayState)", () => {
  it("R-HYB-1: OWA → the cloud OWA, ActiveSync → 451 to the cloud, EWS → a clear error naming the cloud endpoint", async () => {
    const objs = (await loadManifestDir("examples/contoso")).objects.map((o) => structuredClone(o.object)) as ApiObject[];
    objs.push({ apiVersion: API_VERSION, kind: "OrganizationRelationship", metadata: { name: "office365" }, spec: { domainNames: ["contoso.mail.onmicrosoft.com"], targetOwaUrl: "https://outlook.office.com/mail", targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync", enabled: true } });
    // As a sidecar gets it in Kubernetes: the objects over xDS (GatewayState), rebuilt on its side.
    const built = buildTopology(objs);
    const gs = decodeGatewayState(gatewayStateResource(objs, built.version, []).encoded);
    expect(gs.versionMismatch).toBe(false);
    const topology = gs.state.topology;
    expect([...topology.organizationRelationships.keys()]).toEqual(["office365"]);
    const smtp = "mia@contoso.com";
    const directory = new CsvDirectory([{ primarySmtpAddress: smtp, userPrincipalName: smtp, samAccountName: "mia", database: "", emailAddresses: [smtp], remote: { targetAddress: "mia@contoso.mail.onmicrosoft.com", recipientTypeDetails: "RemoteUserMailbox" } }]);
    const s3 = new SidecarServer({ state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }), directory, affinityKey: Buffer.alloc(32, 4), logger: pino({ level: "silent" }) });
    const c3 = authzClient(await s3.start(0));
    const auth = { authorization: `Basic ${Buffer.from(`${smtp}:x`).toString("base64")}` };
    try {
      const owa = await c3.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: auth }));
      expect(hdrs(owa)["x-cas-rules"]).toContain("R-HYB-1");
      expect(`${hdrs(owa)["location"] ?? ""} ${owa.denied_response?.body ?? ""}`).toContain("https://outlook.office.com/mail");
      const eas = await c3.check(envoyCheckRequest({ host: "usa.contoso.com", method: "POST", path: "/Microsoft-Server-ActiveSync?Cmd=Sync&User=mia&DeviceId=d&DeviceType=p", headers: auth }));
      expect(hdrs(eas)).toMatchObject({ "x-cas-decision": "redirect-451", "x-ms-location": "https://outlook.office365.com/Microsoft-Server-ActiveSync" });
      const body = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${smtp}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
      const ad = await c3.check(envoyCheckRequest({ host: "usa.contoso.com", method: "POST", path: "/Autodiscover/Autodiscover.xml", headers: { ...auth, "content-type": "text/xml" }, body }));
      expect(hdrs(ad)).toMatchObject({ "x-cas-decision": "redirect-addr", "content-type": "text/xml; charset=utf-8" });
      expect(ad.denied_response?.status?.code).toBe("OK"); // envoy.type.v3.StatusCode OK = 200
      expect(ad.denied_response?.body ?? "").toContain("<Action>redirectAddr</Action>");
      expect(ad.denied_response?.body ?? "").toContain("<RedirectAddr>mia@contoso.mail.onmicrosoft.com</RedirectAddr>");
      const ews = await c3.check(envoyCheckRequest({ host: "usa.contoso.com", method: "POST", path: "/EWS/Exchange.asmx", headers: auth }));
      expect(ews.ok_response).toBeFalsy();
      expect(hdrs(ews)["x-cas-rules"]).toContain("R-HYB-1");
      expect(ews.denied_response?.body ?? "").toContain("https://outlook.office365.com");
    } finally {
      c3.close();
      await s3.stop();
    }
  });
});
