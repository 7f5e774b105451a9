// R-HYB-1 property (fast-check) through the sidecar's in-process pipeline on examples/contoso plus an
// OrganizationRelationship and remote mailboxes: whatever the service, host, method, identity source
// (Basic, NTLM, X-AnchorMailbox, the ActiveSync User= parameter) and whatever hostile back-end cookies
// or headers the client adds, a request whose mailbox is in Exchange Online is never served by or
// proxied to an on-premises server; it is sent to the cloud or refused. (Only an NTLM handshake that
// names no mailbox but its own user is the receiving site's, by R-LB-8.)
import fc from "fast-check";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, type ApiObject } from "../../crds/index.js";
import { CsvDirectory } from "../../model/directory/csv-directory.js";
import type { MailboxRecord } from "../../model/directory/types.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { buildTopology } from "../../model/topology/build.js";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import type { DecisionService } from "../../sidecar/authz/decision-service.js";
import { SidecarServer } from "../../sidecar/authz/server.js";
import { buildNtlmAuthenticate } from "../../sidecar/decision/ntlm.js";
import { envoyCheckRequest } from "./envoy-request.js";

const REMOTE = ["mia", "noah"];
const remote = (sam: string): MailboxRecord => ({
  primarySmtpAddress: `${sam}@contoso.com`,
  userPrincipalName: `${sam}@contoso.com`,
  samAccountName: sam,
  database: "",
  emailAddresses: [`${sam}@contoso.com`],
  remote: { targetAddress: `${sam}@contoso.mail.onmicrosoft.com`, recipientTypeDetails: "RemoteUserMailbox" },
});

let server: SidecarServer;
let svc: DecisionService;
beforeAll(async () => {
  const org = await loadOrganisation("examples/contoso", "examples/contoso/mailboxes.csv");
  const objs = (await loadManifestDir("examples/contoso")).objects.map((o) => structuredClone(o.object)) as ApiObject[];
  objs.push({
    apiVersion: API_VERSION,
    kind: "OrganizationRelationship",
    metadata: { name: "office365" },
    spec: { domainNames: ["contoso.mail.onmicrosoft.com"], targetOwaUrl: "https://outlook.office.com/mail", targetActiveSyncUrl: "https://outlook.office365.com/Microsoft-Server-ActiveSync", enabled: true },
  });
  const topology = buildTopology(objs);
  server = new SidecarServer({
    state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }),
    directory: new CsvDirectory([...org.directory!.records(), ...REMOTE.map(remote)]),
    affinityKey: Buffer.alloc(32, 6),
    logger: pino({ level: "silent" }),
  });
  svc = await server.decisionService();
});
afterAll(async () => {
  await server.stop();
});

const SERVERS = ["usa-cas01", "europe-mbx01", "asia-e2016-01", "usa-cas01.usa.contoso.com"];
const user = fc.constantFrom(...REMOTE);
const request = fc.record({
  host: fc.constantFrom("mail.contoso.com", "usa.contoso.com", "europe.contoso.com", "asia.contoso.com"),
  path: fc.constantFrom(
    "/owa/",
    "/ecp/",
    "/EWS/Exchange.asmx",
    "/mapi/emsmdb/",
    "/rpc/rpcproxy.dll?usa-cas01.usa.contoso.com:6001",
    "/OAB/",
    "/Autodiscover/Autodiscover.xml",
    "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=d1&DeviceType=iPhone",
    "/PowerShell/",
  ),
  method: fc.constantFrom("GET", "POST", "RPC_IN_DATA"),
  auth: fc.oneof(
    user.map((u) => `Basic ${Buffer.from(`${u}@contoso.com:x`).toString("base64")}`),
    user.map((u) => `NTLM ${buildNtlmAuthenticate(u, "CONTOSO").toString("base64")}`),
  ),
  anchor: fc.option(user.map((u) => `SMTP:${u}@contoso.com`), { nil: undefined }),
  easUser: fc.option(user, { nil: undefined }),
  // Hostile selectors (R-SEC-1, R-EWS-6): never a way on premises for a mailbox in the cloud.
  cookie: fc.option(
    fc.oneof(
      fc.constantFrom(...SERVERS).map((s) => `X-BackEndOverrideCookie=${s}~1942062522`),
      fc.constantFrom(...SERVERS).map((s) => `X-BEResource=${s}/EWS/Exchange.asmx?a=~1942062522`),
    ),
    { nil: undefined },
  ),
  preferAffinity: fc.boolean(),
});

describe("R-HYB-1: mailboxes in Exchange Online (property)", () => {
  it("R-HYB-1: a request for a mailbox in Exchange Online is never local or proxied on premises, whatever it carries", async () => {
    let cloud = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = { authorization: r.auth };
        if (r.anchor) headers["x-anchormailbox"] = r.anchor;
        if (r.cookie) headers.cookie = r.cookie;
        if (r.preferAffinity) headers["x-preferserveraffinity"] = "true";
        const path = r.easUser && r.path.startsWith("/Microsoft-Server-ActiveSync") ? `${r.path}&User=${r.easUser}` : r.path;
        const ev = await svc.evaluateRaw(envoyCheckRequest({ host: r.host, method: r.method, path, headers }), "ext_authz");
        const d = ev.decision;
        const what = `${r.method} ${r.host}${path} ${r.auth.slice(0, 5)} ${r.cookie ?? ""}`;
        // R-LB-8: an NTLM handshake's own user never routes its connection; with nothing else naming
        // a mailbox the receiving site's CAS takes the connection (and, as Exchange, decides onward).
        if (r.auth.startsWith("NTLM") && !r.anchor && !(r.easUser && path.includes("User=")) && d.rules.includes("R-LB-8") && !d.rules.includes("R-HYB-1")) return;
        expect(d.outcome === "local" || d.outcome === "proxy", `${what}: ${d.outcome} ${d.rules.join(",")}`).toBe(false);
        if (d.rules.includes("R-HYB-1")) cloud++;
        else expect(d.outcome, `${what}: refused without R-HYB-1 only by a security rule: ${d.rules.join(",")}`).toBe("error");
      }),
      { numRuns: 300 },
    );
    expect(cloud).toBeGreaterThan(75);
  });
});
