// Issue 20, finding 6: standalone's /readyz is 200 only when the gateway can answer correctly
// (configuration accepted, an organisation with servers, the mailbox directory loaded, Envoy running
// when standalone started it) and its body says every reason why not; rejected input stays visible
// in /config_dump and in the cas_gateway_config_rejected metric. Before: 200 in all those states.
import { appendFileSync, chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StandaloneFlags, startStandalone, type RunningStandalone } from "../../cli/commands/standalone.js";
import { EVERY_PORT_FREE } from "../standalone-ports.js";

const root = mkdtempSync(join(tmpdir(), "cas-readyz-"));
let running: RunningStandalone | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function org(name: string): { manifests: string; csv: string } {
  const manifests = join(root, name);
  cpSync("examples/contoso", manifests, { recursive: true });
  const csv = join(root, `${name}.csv`);
  cpSync(join(manifests, "mailboxes.csv"), csv);
  rmSync(join(manifests, "mailboxes.csv"));
  return { manifests, csv };
}

async function start(manifests: string, csv: string, extra: Record<string, unknown> = {}): Promise<RunningStandalone> {
  const flags = StandaloneFlags.parse({
    manifests,
    directory: csv,
    ...EVERY_PORT_FREE,
    healthChecks: false,
    envoy: "off",
    bootstrap: join(root, `envoy-${Math.random()}.yaml`),
    settleMs: "0",
    logLevel: "silent",
    ...extra,
  });
  running = await startStandalone(flags, pino({ level: "silent" }));
  return running;
}

async function get(r: RunningStandalone, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${r.adminPort}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("standalone /readyz tells the truth (issue 20, finding 6)", () => {
  it("rejected manifests: 503 naming file:line, visible in /config_dump and the metric; fixed: 200", async () => {
    const { manifests, csv } = org("reject");
    const r = await start(manifests, csv);
    await expect.poll(async () => (await get(r, "/readyz")).status, { timeout: 30_000 }).toBe(200);
    const bad = join(manifests, "bad.yaml");
    writeFileSync(bad, "apiVersion: casgateway.io/v1alpha1\nkind: ADSite\nmetadata:\n  name: x\nspec:\n  internetFacing: maybe\n");
    await expect.poll(async () => (await get(r, "/readyz")).status, { timeout: 30_000 }).toBe(503);
    const ready = await get(r, "/readyz");
    expect(ready.body).toContain(`manifests rejected (1 error, the last good configuration stays in force; see /config_dump): ${bad}:6:19: ADSite/x: spec.internetFacing`);
    const dump = JSON.parse((await get(r, "/config_dump")).body) as { servers: number; provider: { manifests: { rejected: boolean; errors: { file: string; line: number }[]; budget: { maxFileBytes: number } } } };
    expect(dump.servers).toBe(17);
    expect(dump.provider.manifests).toMatchObject({ rejected: true, errors: [{ file: bad, line: 6 }], budget: { maxFileBytes: 4 << 20 } });
    expect((await get(r, "/metrics")).body).toMatch(/cas_gateway_config_rejected\{input="manifests"\} 1/);
    rmSync(bad);
    await expect.poll(async () => (await get(r, "/readyz")).status, { timeout: 30_000 }).toBe(200);
    expect((await get(r, "/metrics")).body).toMatch(/cas_gateway_config_rejected\{input="manifests"\} 0/);
  });

  it("an empty organisation and no mailbox directory: 503 with both reasons", async () => {
    const empty = join(root, "empty");
    cpSync("examples/contoso/sites.yaml", join(empty, "sites.yaml"));
    const r = await start(empty, join(root, "no-such.csv"));
    await expect.poll(async () => (await get(r, "/readyz")).body, { timeout: 30_000 }).toContain("no mailbox directory loaded");
    const ready = await get(r, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toContain(`the organisation in force has no servers (${empty})`);
    expect(ready.body).toContain("mailbox CSV rejected");
    expect((await get(r, "/metrics")).body).toMatch(/cas_gateway_config_rejected\{input="directory"\} 1/);
  });

  it("Envoy that standalone started exits: 503 saying so", async () => {
    const { manifests, csv } = org("envoy");
    const fake = join(root, "envoy-that-exits");
    writeFileSync(fake, "#!/bin/sh\nsleep 1\nexit 3\n");
    chmodSync(fake, 0o755);
    const r = await start(manifests, csv, { envoy: fake });
    await expect.poll(async () => (await get(r, "/readyz")).body, { timeout: 30_000 }).toContain("envoy exited (code 3)");
    expect((await get(r, "/readyz")).status).toBe(503);
    expect(readFileSync(csv, "utf8").length).toBeGreaterThan(0);
  });

  // Found after the first round: /readyz must not say 200 while the mailbox directory loads (an
  // explain right after was refused "directory cannot be reached"). A 150,000-row export takes a
  // while in the worker; every 200 must be followed by answers from the directory, and a
  // replacement export that loads later must leave the old directory answering (still ready).
  it("not ready while the directory loads; once ready, look-ups are answered; a reload keeps it ready", async () => {
    const { manifests, csv } = org("loading");
    let rows = "";
    for (let i = 0; i < 150_000; i++) rows += `"u${i}","U ${i}","u${i}@contoso.com","u${i}@corp.contoso.com","u${i}","DB-USA-2010","00000000-0000-4000-8000-${String(i).padStart(12, "0")}","SMTP:u${i}@contoso.com"\r\n`;
    appendFileSync(csv, rows);
    const r = await start(manifests, csv);
    const explain = async (user: string) => {
      const res = await fetch(`http://127.0.0.1:${r.adminPort}/explain`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url: "https://usa.contoso.com/owa/", user }),
      });
      return (await res.json()) as { decision: { outcome: string; rules: string[] } };
    };
    const seen: string[] = [];
    let readyAt = 0;
    for (const end = Date.now() + 60_000; Date.now() < end; ) {
      const ready = await get(r, "/readyz");
      if (ready.status !== 200) {
        seen.push(ready.body.trim());
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      readyAt = Date.now();
      // Right after a 200: the first and the last row of the export are found (no 503 from the directory).
      for (const user of ["alice@contoso.com", "u149999@contoso.com"]) {
        const e = await explain(user);
        expect(e.decision.rules, `${user} right after /readyz 200`).not.toContain("R-ENG-DIRECTORY-UNAVAILABLE");
        expect(e.decision.outcome, user).toBe("local");
      }
      break;
    }
    expect(readyAt, `never ready; last reasons: ${seen.slice(-3).join(" | ")}`).toBeGreaterThan(0);
    expect(seen.some((b) => b.includes("mailbox directory still loading") || b.includes("no mailbox directory loaded")), seen.slice(0, 3).join(" | ")).toBe(true);
    expect(seen.every((b) => b.startsWith("not ready:"))).toBe(true);

    // A new export (one more row): while it loads, the old directory answers and /readyz stays 200.
    appendFileSync(csv, `"late","Late","late@contoso.com","late@corp.contoso.com","late","DB-USA-2010","00000000-0000-4000-8000-999999999999","SMTP:late@contoso.com"\r\n`);
    const during: number[] = [];
    for (const end = Date.now() + 60_000; Date.now() < end; ) {
      during.push((await get(r, "/readyz")).status);
      const e = await explain("u7@contoso.com");
      expect(e.decision.rules).not.toContain("R-ENG-DIRECTORY-UNAVAILABLE");
      if ((await explain("late@contoso.com")).decision.rules.includes("R-ENG-UNKNOWN-MAILBOX")) {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      break;
    }
    expect((await explain("late@contoso.com")).decision.outcome).toBe("local");
    expect(during.every((s) => s === 200), JSON.stringify(during)).toBe(true);
  }, 120_000);
});
