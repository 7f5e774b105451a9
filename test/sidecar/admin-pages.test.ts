// The sidecar's admin port answers the same administrator routes as standalone's: the organisation
// page (GET /) and POST /explain, from the state it decides with (here files and a --down list; in a
// cluster, what the control plane sends). Loopback clients only unless --admin-pages-remote.
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleAdminPages } from "../../cli/admin/organisation-routes.js";
import { SidecarFlags, startSidecar } from "../../cli/commands/sidecar.js";

const FRANK_EAS = "https://usa.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=1&DeviceType=x";
let sidecar: Awaited<ReturnType<typeof startSidecar>>;
let admin: string;

beforeAll(async () => {
  sidecar = await startSidecar(
    SidecarFlags.parse({
      manifests: "examples/contoso",
      nodeCluster: "cas-gateway",
      directory: "examples/contoso/mailboxes.csv",
      listen: "127.0.0.1:0",
      admin: "127.0.0.1:0",
      affinityTtl: "3600",
      defaultSite: "usa",
      down: ["europe-mbx01"],
      logLevel: "silent",
    }),
  );
  admin = `http://127.0.0.1:${sidecar.adminPort}`;
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
});

describe("sidecar admin port: organisation page and POST /explain", () => {
  it("GET / shows the organisation as the sidecar holds it, with what is down", async () => {
    const r = await fetch(`${admin}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await r.text();
    expect(html).toContain("<title>Exchange organisation — cas-gateway sidecar</title>");
    expect(html).toContain("<code>europe.contoso.com</code>");
    expect(html).toMatch(/<th scope="row">DB-EUR-2010<\/th><td>europe-mbx01 <span class="bad">✕ down<\/span>/);
    expect((await fetch(`${admin}/metrics`)).status).toBe(200);
  });

  it("POST /explain decides with the sidecar's state: frank's database server is down", async () => {
    const r = await fetch(`${admin}/explain`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: FRANK_EAS, user: "frank" }) });
    expect(r.status).toBe(200);
    const a = (await r.json()) as { down: string[]; decision: { outcome: string; trace: string[] }; text: string };
    expect(a.down).toEqual(["europe-mbx01"]);
    expect(a.text).toMatch(/^decision: /);
    expect(a.decision.trace.join("\n")).toContain("europe-mbx01");
    expect((await fetch(`${admin}/explain`)).status).toBe(405);
  });

  it("refuses clients that are not on loopback unless told to serve them", async () => {
    const call = async (remoteAddress: string, allowRemote: boolean) => {
      let status = 0;
      const req = { url: "/", method: "GET", headers: { host: "10.0.0.5:9102" }, socket: { remoteAddress } } as unknown as http.IncomingMessage;
      const res = { writeHead: (s: number) => ((status = s), res), end: () => res } as unknown as http.ServerResponse;
      const view = async () => {
        throw new Error("not reached");
      };
      await handleAdminPages(req, res, { view, explain: { service: () => Promise.reject(new Error("x")), down: () => [] }, allowRemote }).catch(() => undefined);
      return status;
    };
    expect(await call("10.1.2.3", false)).toBe(403);
    expect(await call("::ffff:10.1.2.3", false)).toBe(403);
    // Allowed: the page is rendered (here the view throws, so nothing is written).
    expect(await call("10.1.2.3", true)).toBe(0);
  });
});
