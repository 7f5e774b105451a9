// Outlook Anywhere and MAPI over HTTP (docs/rules.md R-OUT-2, R-OUT-3) on examples/contoso: the
// server a 2007/2010 Outlook names decides the site, and the RPC channels are streams that meet on
// one server.
import { beforeAll, describe, expect, it } from "vitest";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import type { Topology } from "../../model/topology/types.js";
import type { DirectoryView } from "../../model/directory/types.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { decide } from "./engine.js";
import { rpcProxyTarget } from "./rules/other.js";
import { NTLM_NEGOTIATE, basic, httpReq } from "./test-org.js";
import type { ClientRequest, Decision } from "./types.js";

const EXAMPLE = new URL("../../examples/contoso/", import.meta.url).pathname;
let contoso: Topology;
let dir: DirectoryView;
beforeAll(async () => {
  const org = await loadOrganisation(EXAMPLE, `${EXAMPLE}mailboxes.csv`);
  contoso = org.topology;
  dir = org.directory!;
});
const run = (req: ClientRequest): Decision => decide(req, contoso, dir, ALL_HEALTHY);
const rpc = (target: string, method: string, headers: Record<string, string> = {}) =>
  httpReq("usa.contoso.com", `/rpc/rpcproxy.dll?${target}`, { method, headers });

describe("R-OUT-2: Outlook Anywhere names the server for 2007 and 2010", () => {
  it("R-OUT-2: the RPC proxy target's host and port are read from both query forms; a <GUID>@<domain> is not a server", () => {
    expect(rpcProxyTarget("/rpc/rpcproxy.dll?mbx01.europe.contoso.com:6001")).toEqual({ host: "mbx01.europe.contoso.com", port: 6001 });
    expect(rpcProxyTarget("/rpc/rpcproxy.dll?RpcProxy=mbx01.europe.contoso.com%3A6004")).toEqual({ host: "mbx01.europe.contoso.com", port: 6004 });
    expect(rpcProxyTarget("/rpc/rpcproxy.dll?6b5843ce-9d2d-0599-c3e3-ce6d59c1551f@contoso.com:6001")).toBeUndefined();
    expect(rpcProxyTarget("/rpc/rpcproxy.dll?../../x:6001")).toBeUndefined();
    expect(rpcProxyTarget("/rpc/rpcproxy.dll?host:port")).toBeUndefined();
  });

  it("R-OUT-2: frank's (2010, europe) Outlook naming europe's mailbox server is proxied to europe, port named in the trace", () => {
    const d = run(rpc("mbx01.europe.contoso.com:6001", "RPC_IN_DATA", { authorization: basic("frank@contoso.com", "x") }));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "europe" });
    expect(d.rules).toEqual(expect.arrayContaining(["R-OUT-2", "R-OUT-3"]));
    expect(d.trace.join("\n")).toContain("port 6001 (the store)");
  });

  it("R-OUT-2: the NTLM negotiate message (no user yet) is routed by the server it names, not to the receiving site", () => {
    const d = run(rpc("mbx01.europe.contoso.com:6004", "RPC_OUT_DATA", { authorization: NTLM_NEGOTIATE }));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "europe" });
    expect(d.rules).toContain("R-OUT-2");
    expect(d.trace.join("\n")).toContain("(the address book)");
  });

  it("R-OUT-2: a name the topology does not know never selects a back end (R-SEC-1): the mailbox decides", () => {
    const d = run(rpc("evil.example.com:6001", "RPC_IN_DATA", { authorization: basic("frank@contoso.com", "x") }));
    expect(d).toMatchObject({ outcome: "proxy", targetSite: "europe" });
    expect(d.rules).not.toContain("R-OUT-2");
    expect(d.trace.join("\n")).toContain("not a server of the topology");
  });
});

describe("R-OUT-3: RPC and MAPI over HTTP are streams", () => {
  it("R-OUT-3: RPC_IN_DATA and RPC_OUT_DATA of one 2010 user meet on one server", () => {
    const auth = { authorization: basic("alice@contoso.com", "x") };
    const a = run(rpc("cas01.usa.contoso.com:6001", "RPC_IN_DATA", auth));
    const b = run(rpc("cas01.usa.contoso.com:6001", "RPC_OUT_DATA", auth));
    expect(a.rules).toContain("R-OUT-3");
    expect(a.outcome === "local" && a.targetServer).toBeTruthy();
    expect(b).toMatchObject({ outcome: "local", targetServer: (a as { targetServer?: string }).targetServer });
  });

  it("R-OUT-3: MAPI over HTTP for a 2013+ mailbox is routed as a stream to the active copy", () => {
    const d = run(httpReq("usa.contoso.com", "/mapi/emsmdb/?MailboxId=155bad9d-288c-1bed-bb3f-c799d47b944f@contoso.com", { method: "POST", headers: { authorization: basic("kenji@contoso.com", "x") } }));
    expect(d.rules).toEqual(expect.arrayContaining(["R-OUT-1", "R-OUT-3"]));
    expect(d.outcome).toBe("proxy");
  });
});
