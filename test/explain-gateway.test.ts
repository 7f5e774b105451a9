// "Why did frank get a 451?" asked of the RUNNING gateway: POST /explain on standalone's admin port
// decides against the configuration, directory and health in force (which may differ from the files:
// a rejected edit leaves the last good configuration in force), and `cas-gateway explain --gateway`
// prints what `explain` prints from files. /config_dump shows databases, their active server and copies.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runExplain } from "../cli/commands/explain.js";
import { StandaloneFlags, startStandalone } from "../cli/commands/standalone.js";
import { EVERY_PORT_FREE } from "./standalone-ports.js";

const ROOT = join(import.meta.dirname, "..");
const FRANK_EAS = "https://usa.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=1&DeviceType=x";

let tmp: string;
let org: string;
let running: Awaited<ReturnType<typeof startStandalone>>;
let admin: string;

const post = async (body: unknown) => {
  const r = await fetch(`${admin}/explain`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};
const dump = async () => (await (await fetch(`${admin}/config_dump`)).json()) as { topologyVersion: string; databases: { name: string; activeServer: string; activeSite: string; copies: { server: string; down: boolean }[] }[]; providerErrors: unknown[] };
async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "cas-explain-gw-"));
  org = join(tmp, "contoso");
  cpSync(join(ROOT, "examples", "contoso"), org, { recursive: true });
  const flags = StandaloneFlags.parse({
    manifests: org,
    directory: join(org, "mailboxes.csv"),
    site: "usa",
    ...EVERY_PORT_FREE,
    healthChecks: false,
    envoy: "off",
    bootstrap: join(tmp, "envoy.yaml"),
    logLevel: "silent",
  });
  running = await startStandalone(flags, pino({ level: "silent" }));
  admin = `http://127.0.0.1:${running.adminPort}`;
  // The directory and configuration load after the ports open: explain what a ready gateway does.
  await until("ready", async () => ((await fetch(`${admin}/readyz`)).status === 200 ? true : undefined));
  await until("directory loaded", async () => ((await post({ url: FRANK_EAS, user: "frank" })).json.decision as { outcome: string }).outcome === "redirect" ? true : undefined);
}, 60_000);
afterAll(async () => {
  await running?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("explain against the running gateway", () => {
  it("POST /explain: frank's ActiveSync phone at usa gets HTTP 451 to europe, with the numbered trace", async () => {
    const r = await post({ url: FRANK_EAS, user: "frank" });
    expect(r.status).toBe(200);
    expect(r.json.decision).toMatchObject({ outcome: "redirect", kind: "eas451", url: "https://europe.contoso.com/Microsoft-Server-ActiveSync" });
    expect((r.json.decision as { rules: string[] }).rules).toContain("R-EAS-4");
    expect(r.json.text).toMatch(/^decision: redirect \(eas451: HTTP 451, X-MS-Location\) → https:\/\/europe\.contoso\.com\/Microsoft-Server-ActiveSync\n {2}1\. /);
    expect(r.json.topologyVersion).toBe((await dump()).topologyVersion);
    expect(r.json.down).toEqual([]);
  });

  it("refuses malformed requests with 400 and says which field (zod-validated JSON)", async () => {
    expect(await post({ url: "not a url" })).toMatchObject({ status: 400, json: { error: expect.stringContaining("url:") } });
    expect(await post({ url: FRANK_EAS, usr: "frank" })).toMatchObject({ status: 400, json: { error: expect.stringContaining("usr") } });
    const notJson = await fetch(`${admin}/explain`, { method: "POST", body: "{" });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${admin}/explain`)).status).toBe(405);
  });

  it("`cas-gateway explain --gateway` prints what `explain` from the same files prints", async () => {
    const remote = await runExplain({ gateway: admin, url: FRANK_EAS, user: "frank" });
    const local = await runExplain({ manifests: org, directory: join(org, "mailboxes.csv"), url: FRANK_EAS, user: "frank", site: "usa" });
    expect(remote.exitCode).toBe(0);
    expect(remote.stdout).toBe(local.stdout);
    expect(remote.stderr).toMatch(/^running gateway http:\/\/127\.0\.0\.1:\d+: topology version [0-9a-f]+; down: none\n$/);
    const bad = await runExplain({ gateway: admin, manifests: org, url: FRANK_EAS });
    expect(bad.exitCode).toBe(2);
    const gone = await runExplain({ gateway: "http://127.0.0.1:9", url: FRANK_EAS });
    expect(gone).toMatchObject({ exitCode: 1, stderr: expect.stringContaining("cannot reach the gateway's admin port") });
  });

  it("/config_dump shows databases with their active server and copies; follows a failover; a rejected edit keeps answering from the configuration in force", async () => {
    const before = await dump();
    const db = before.databases.find((d) => d.name === "db-asia-2016")!;
    expect(db).toBeDefined();
    expect(db.copies.map((c) => c.server)).toContain(db.activeServer);
    const other = db.copies.find((c) => c.server !== db.activeServer);
    const file = join(org, "databases.yaml");
    const text = readFileSync(file, "utf8");
    expect(other).toBeDefined();
    if (other) {
      // Fail the database over by editing its manifest.
      const moved = text.replace(new RegExp(`(name: db-asia-2016\\n[\\s\\S]*?activeServer: )${db.activeServer}`), `$1${other.server}`);
      expect(moved).not.toBe(text);
      writeFileSync(file, moved);
      await until("failover in config_dump", async () => ((await dump()).databases.find((d) => d.name === "db-asia-2016")?.activeServer === other.server ? true : undefined));
    }
    // A broken edit: the running gateway keeps the last good configuration, and explain answers from it.
    const good = await dump();
    writeFileSync(file, `${readFileSync(file, "utf8")}\n---\napiVersion: casgateway.io/v1alpha1\nkind: MailboxDatabase\nmetadata: {name: db-x}\nspec: {activeServer: nowhere, servers: [nowhere], maintenence: true}\n`);
    await until("rejected edit reported", async () => ((await dump()).providerErrors.length > 0 ? true : undefined));
    const r = await post({ url: FRANK_EAS, user: "frank" });
    expect(r.json.topologyVersion).toBe(good.topologyVersion);
    expect(r.json.decision).toMatchObject({ outcome: "redirect", kind: "eas451" });
  }, 60_000);
});
