import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { easQueryUser, encodeEasBase64Query, parseEasQuery } from "./eas-query.js";
import { anchorMailboxIdentity, identityCandidates } from "./identity.js";
import { buildNtlmAuthenticate, ntlmIdentityFromAuthorization, parseNtlmAuthenticate } from "./ntlm.js";
import { ewsAffinityOperation, isAvailabilityRequest, serviceForRequest } from "./service.js";
import { basic, httpReq, mailReq } from "./test-org.js";

describe("serviceForRequest", () => {
  it("maps paths case-insensitively and mail logins", () => {
    const cases: [string, string | undefined][] = [
      ["/owa", "Owa"], ["/OWA/auth/logon.aspx", "Owa"], ["/ecp/?rfr=owa", "Ecp"],
      ["/Microsoft-Server-ActiveSync?Cmd=Sync", "ActiveSync"], ["/microsoft-server-activesync", "ActiveSync"],
      ["/EWS/Exchange.asmx", "Ews"], ["/oab/x/oab.xml", "Oab"], ["/Autodiscover/Autodiscover.xml", "Autodiscover"],
      ["/mapi/emsmdb/?MailboxId=x", "Mapi"], ["/rpc/rpcproxy.dll?x:6001", "RpcHttp"], ["/PowerShell", "PowerShell"],
      ["/", undefined], ["/owaextra", undefined], ["", undefined],
    ];
    for (const [p, s] of cases) expect(serviceForRequest(httpReq("h", p)), p).toBe(s);
    expect(serviceForRequest(mailReq("h", "Imap4", "u"))).toBe("Imap4");
  });
  it("recognises Availability and the EWS affinity operations in the SOAP body", () => {
    expect(isAvailabilityRequest(httpReq("h", "/ews", { body: "<m:GetUserAvailabilityRequest>" }))).toBe(true);
    expect(ewsAffinityOperation(httpReq("h", "/ews", { body: "<m:GetEvents>" }))).toBe("GetEvents");
    expect(ewsAffinityOperation(httpReq("h", "/ews", { body: "<Unsubscribe xmlns='x'>" }))).toBe("Unsubscribe");
    expect(ewsAffinityOperation(httpReq("h", "/ews", { body: "<m:GetEventsSomething/>" }))).toBeUndefined();
  });
});

describe("NTLM type 3", () => {
  it("reads user and domain in UTF-16LE and OEM", () => {
    expect(parseNtlmAuthenticate(buildNtlmAuthenticate("jun", "CONTOSO"))).toMatchObject({ identity: "CONTOSO\\jun" });
    expect(parseNtlmAuthenticate(buildNtlmAuthenticate("jürgen", "EUROPE", { unicode: false }))).toMatchObject({ user: "jürgen", domain: "EUROPE" });
    expect(parseNtlmAuthenticate(buildNtlmAuthenticate("kenji@contoso.com", ""))).toMatchObject({ identity: "kenji@contoso.com" });
  });
  it("finds the NTLMSSP message inside SPNEGO (Negotiate)", () => {
    const msg = buildNtlmAuthenticate("frank", "CONTOSO");
    const spnego = Buffer.concat([Buffer.from([0xa1, 0x82, 0x01, 0x00, 0x30, 0x81, 0xfd, 0xa2, 0x81, 0xfa, 0x04, 0x81, 0xf7]), msg]);
    expect(ntlmIdentityFromAuthorization(`Negotiate ${spnego.toString("base64")}`)?.identity).toBe("CONTOSO\\frank");
  });
  it("rejects type 1/2 messages and out-of-bounds buffers without throwing", () => {
    const msg = buildNtlmAuthenticate("frank", "CONTOSO");
    const t1 = Buffer.from(msg);
    t1.writeUInt32LE(1, 8);
    expect(parseNtlmAuthenticate(t1)).toBeUndefined();
    const bad = Buffer.from(msg);
    bad.writeUInt32LE(0xfffffff0, 40); // user offset far past the end
    expect(parseNtlmAuthenticate(bad)).toBeUndefined();
    expect(parseNtlmAuthenticate(msg.subarray(0, 30))).toBeUndefined();
  });
  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, sig) => {
        const b = sig ? Buffer.concat([Buffer.from("NTLMSSP\0\x03\0\0\0", "latin1"), bytes]) : Buffer.from(bytes);
        parseNtlmAuthenticate(b);
        ntlmIdentityFromAuthorization(`NTLM ${b.toString("base64")}`);
      }),
      { numRuns: 500 },
    );
  });
});

describe("ActiveSync query", () => {
  it("parses the MS-ASHTTP base64 example (Sync, v140Device, SmartPhone)", () => {
    expect(parseEasQuery("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")).toEqual({
      form: "base64", protocolVersion: 140, command: "Sync", user: undefined, deviceId: "v140Device", deviceType: "SmartPhone",
    });
  });
  it("reads User (tag 8) from the base64 form and User= from the plain form", () => {
    const q = encodeEasBase64Query({ protocolVersion: 141, command: "Ping", deviceId: "dev1", deviceType: "iPhone", user: "CONTOSO\\jun", policyKey: 123 });
    expect(parseEasQuery(q)).toMatchObject({ form: "base64", command: "Ping", user: "CONTOSO\\jun" });
    expect(parseEasQuery("Cmd=Sync&User=frank%40contoso.com&DeviceId=a&DeviceType=b")).toMatchObject({ form: "plain", user: "frank@contoso.com" });
  });
  it("easQueryUser (the hot path) agrees with parseEasQuery", () => {
    const part = fc.oneof(
      fc.constantFrom("Cmd=Sync", "User=bob", "user=a%40b.c", "USER=", "User=%zz", "DeviceId=1", "x", "=", "User=carol"),
      fc.string({ maxLength: 12 }),
    );
    const plain = fc.array(part, { maxLength: 6 }).map((a) => a.join("&"));
    const b64 = fc.record({ user: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }), dev: fc.string({ maxLength: 16 }) })
      .map((r) => encodeEasBase64Query({ protocolVersion: 141, command: "Sync", deviceId: r.dev, deviceType: "t", ...(r.user ? { user: r.user } : {}) }));
    fc.assert(
      fc.property(fc.oneof(plain, b64), (q) => {
        expect(easQueryUser(q)?.user).toBe(parseEasQuery(q)?.user);
      }),
      { numRuns: 1000 },
    );
  });
  it("never throws on arbitrary query strings", () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => { parseEasQuery(s); }), { numRuns: 500 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => { parseEasQuery(Buffer.from(b).toString("base64")); }), { numRuns: 500 });
  });
});

describe("identityCandidates", () => {
  const GUID = "155bad9d-288c-1bed-bb3f-c799d47b944f";
  it("orders X-AnchorMailbox, connection point, credentials, EAS User, FBA username", () => {
    const c = identityCandidates(
      httpReq("h", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=devuser", { headers: { "x-anchormailbox": "UPN:anchor@x.com", authorization: basic("CONTOSO\\bob") } }),
    );
    expect(c).toEqual([
      { value: "anchor@x.com", source: "x-anchormailbox" },
      { value: "CONTOSO\\bob", source: "basic" },
      { value: "devuser", source: "eas-user" },
    ]);
  });
  it("extracts MAPI MailboxId, RPC connection points, Autodiscover EMailAddress and OWA FBA username", () => {
    expect(identityCandidates(httpReq("h", `/mapi/emsmdb/?MailboxId=${GUID}@contoso.com`))).toEqual([{ value: GUID, source: "mapi-mailboxid" }]);
    expect(identityCandidates(httpReq("h", `/rpc/rpcproxy.dll?${GUID.toUpperCase()}@contoso.com:6001`))).toEqual([{ value: GUID, source: "rpc-mailboxid" }]);
    expect(identityCandidates(httpReq("h", "/rpc/rpcproxy.dll?cas01.contoso.com:6001"))).toEqual([]);
    expect(
      identityCandidates(httpReq("h", "/autodiscover/autodiscover.xml", { method: "POST", body: "<a:EMailAddress> x@y.com </a:EMailAddress>" })),
    ).toEqual([{ value: "x@y.com", source: "autodiscover-emailaddress" }]);
    expect(identityCandidates(httpReq("h", "/autodiscover/autodiscover.json/v1.0/x?Email=p%40q.com&Protocol=EWS"))).toEqual([
      { value: "p@q.com", source: "autodiscover-email-query" },
    ]);
    expect(
      identityCandidates(httpReq("h", "/owa/auth.owa", { method: "POST", body: "destination=https%3A%2F%2Fh%2Fowa&flags=4&username=contoso%5Cfrank&password=a%26b" })),
    ).toEqual([{ value: "contoso\\frank", source: "owa-fba-username" }]);
    expect(identityCandidates(mailReq("h", "Pop3", "alice@contoso.com"))).toEqual([{ value: "alice@contoso.com", source: "pop3-login" }]);
  });
  it("drops unresolvable anchors and never reads x-cas-* headers", () => {
    expect(anchorMailboxIdentity("Sid~S-1-5-21-1")).toBeUndefined();
    expect(anchorMailboxIdentity("PUID:1234@x")).toBeUndefined();
    expect(identityCandidates(httpReq("h", "/owa", { headers: { "x-cas-identity": "evil@x.com", "x-cas-target-server": "x" } }))).toEqual([]);
  });
  it("never throws on arbitrary headers, paths and bodies", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.constantFrom("/owa/auth.owa", "/mapi/", "/rpc/x?", "/autodiscover/a", "/Microsoft-Server-ActiveSync?"), (auth, anchor, body, p) => {
        identityCandidates(httpReq("h", p + body, { method: "POST", body, headers: { authorization: auth, "x-anchormailbox": anchor } }));
        identityCandidates(httpReq("h", p, { headers: { authorization: `NTLM ${auth}` } }));
      }),
      { numRuns: 500 },
    );
  });
});
