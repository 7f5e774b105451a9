// The organisation page on standalone's admin port, in headless Chromium (playwright-core): what it
// shows (sites, servers, databases, the last configuration problems, decision counts by rule), "why
// did frank get a 451?" asked through its explain form (with script: JSON to POST /explain and the
// numbered trace drawn in place; without script: an ordinary form post), labels, keyboard and text
// contrast, and the loopback/Host guard. Screenshots go to test-results/organisation-page/.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StandaloneFlags, startStandalone } from "../cli/commands/standalone.js";
import { authzClient, envoyCheckRequest } from "./sidecar/envoy-request.js";
import { EVERY_PORT_FREE } from "./standalone-ports.js";

const ROOT = join(import.meta.dirname, "..");
const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const OUT = join(ROOT, "test-results", "organisation-page");
const FRANK_EAS = "https://usa.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&User=frank&DeviceId=1&DeviceType=x";

let tmp: string;
let running: Awaited<ReturnType<typeof startStandalone>>;
let admin: string;
let browser: Browser;

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openPage(javaScriptEnabled = true): Promise<Page> {
  const ctx = await browser.newContext({ javaScriptEnabled, viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${admin}/`);
  return page;
}

beforeAll(async () => {
  if (!haveChromium) return;
  mkdirSync(OUT, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), "cas-org-page-"));
  const org = join(tmp, "contoso");
  cpSync(join(ROOT, "examples", "contoso"), org, { recursive: true });
  running = await startStandalone(
    StandaloneFlags.parse({
      manifests: org,
      directory: join(org, "mailboxes.csv"),
      site: "usa",
      ...EVERY_PORT_FREE,
      // The example's servers are fictional: probing them would send traffic off this machine.
      healthChecks: false,
      envoy: "off",
      settleMs: "50",
      bootstrap: join(tmp, "envoy.yaml"),
      logLevel: "silent",
    }),
    pino({ level: "silent" }),
  );
  admin = `http://127.0.0.1:${running.adminPort}`;
  await until("ready", async () => ((await fetch(`${admin}/readyz`)).status === 200 ? true : undefined));

  // Traffic as Envoy sends it: frank's phone at usa three times (451 to europe), alice's OWA once.
  const client = authzClient(running.authzPort);
  try {
    const basic = (u: string) => `Basic ${Buffer.from(`${u}:secret`).toString("base64")}`;
    for (let i = 0; i < 3; i++) {
      await client.check(envoyCheckRequest({ method: "POST", host: "usa.contoso.com", path: new URL(FRANK_EAS).pathname + new URL(FRANK_EAS).search, headers: { authorization: basic("frank") } }));
    }
    await client.check(envoyCheckRequest({ host: "usa.contoso.com", path: "/owa/", headers: { authorization: basic("alice") } }));
  } finally {
    client.close();
  }

  // A misspelled field in an edit: rejected with file:line:column, the last good configuration stays.
  const europe = join(org, "site-europe.yaml");
  writeFileSync(europe, readFileSync(europe, "utf8").replace("  site: europe\n  fqdn: cas01.europe.contoso.com\n", "  site: europe\n  maintenence: true\n  fqdn: cas01.europe.contoso.com\n"));
  await until("edit rejected", async () => ((await (await fetch(`${admin}/config_dump`)).json()) as { provider: { manifests: { rejected: boolean } } }).provider.manifests.rejected || undefined);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await running?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!haveChromium)("the organisation page (headless Chromium)", () => {
  it("shows sites, servers, databases, the last configuration problems and decisions by rule", async () => {
    const page = await openPage();
    expect(await page.title()).toBe("Exchange organisation — cas-gateway standalone");
    const sites = page.locator("section[aria-labelledby=sites-h] tbody tr");
    expect(await sites.count()).toBe(3);
    const usa = sites.filter({ has: page.locator("th", { hasText: /^usa$/ }) });
    await expect.poll(() => usa.locator("td").nth(0).innerText()).toBe("usa.contoso.com, mail.contoso.com");
    expect(await usa.locator("td").nth(1).innerText()).toBe("Yes");
    const asia = sites.filter({ has: page.locator("th", { hasText: /^asia$/ }) });
    expect(await asia.locator("td").nth(1).innerText()).toBe("No");

    const servers = page.locator("section[aria-labelledby=servers-h] tbody tr");
    expect(await servers.count()).toBe(17);
    const e2016 = servers.filter({ has: page.locator("th", { hasText: "asia-e2016-01" }) });
    expect(await e2016.locator("td").nth(1).innerText()).toBe("Exchange 2016");
    expect(await e2016.locator("td").nth(2).innerText()).toBe("Client Access + Mailbox");
    expect(await e2016.locator("td").nth(3).innerText()).toBe("Not checked");
    expect(await page.locator("ul.status").innerText()).toContain("health prober: turned off by --no-health-checks");

    const db = page.locator("section[aria-labelledby=databases-h] tbody tr", { has: page.locator("th", { hasText: /^DB-EUR-2010$/ }) });
    expect(await db.locator("td").nth(0).innerText()).toBe("europe-mbx01");
    expect(await db.locator("td").nth(1).innerText()).toBe("europe");

    const problems = await page.locator("section[aria-labelledby=problems-h]").innerText();
    expect(problems).toMatch(/Error \(rejected edit\): .*site-europe\.yaml:8:3: ClientAccessServer\/europe-cas01: spec\.maintenence: .*did you mean maintenance/);
    expect(problems).toContain("A rejected edit leaves the last good configuration in force");
    expect(await page.locator("ul.status").innerText()).toMatch(/Not ready: manifests rejected/);

    const decisions = page.locator("section[aria-labelledby=decisions-h]");
    expect(await decisions.locator("h2").innerText()).toMatch(/^Decisions (in the last 15 minutes|since start \((under a minute|\d+ minutes?) ago\))$/);
    expect(await decisions.innerText()).toMatch(/^4 decisions since/m);
    const ruleCount = async (id: string) => Number(await decisions.locator("table", { hasText: "By rule" }).locator("tr", { has: page.locator("th", { hasText: new RegExp(`^${id}$`) }) }).locator("td").innerText());
    expect(await ruleCount("R-EAS-4")).toBe(3);
    await page.screenshot({ path: join(OUT, "organisation-page.png"), fullPage: true });
  });

  it("why did frank get a 451? The explain form shows the numbered trace (script: JSON to POST /explain, no reload)", async () => {
    const page = await openPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname} ${r.headers()["content-type"] ?? ""}`));
    await page.getByLabel("Request URL").fill(FRANK_EAS);
    await page.getByLabel("User", { exact: true }).fill("frank");
    await page.getByLabel("Method").selectOption("POST");
    // Keyboard: Enter in a field submits the form.
    await page.getByLabel("User", { exact: true }).press("Enter");
    const result = page.locator("#explain-result");
    await result.locator("ol.trace li").first().waitFor();
    expect(await result.locator("h3").innerText()).toBe("decision: redirect (eas451: HTTP 451, X-MS-Location) → https://europe.contoso.com/Microsoft-Server-ActiveSync");
    const steps = await result.locator("ol.trace li").allInnerTexts();
    expect(steps.length).toBeGreaterThanOrEqual(4);
    expect(steps.some((s) => s.startsWith("R-EAS-4: mailbox in site europe: HTTP 451"))).toBe(true);
    expect(await result.innerText()).toMatch(/Rules: .*R-EAS-4/);
    expect(requests).toContain("POST /explain application/json");
    expect(page.url()).toBe(`${admin}/`);
    await page.locator("#explain").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, "explain-frank-451.png"), fullPage: true });
  });

  it("the form works without script: a form post answered with the page and the trace", async () => {
    const page = await openPage(false);
    await page.getByLabel("Request URL").fill(FRANK_EAS);
    await page.getByLabel("User", { exact: true }).fill("frank");
    await Promise.all([page.waitForURL(`${admin}/explain`), page.getByRole("button", { name: "Explain" }).click()]);
    const result = page.locator("#explain-result");
    expect(await result.locator("h3").innerText()).toMatch(/HTTP 451, X-MS-Location\) → https:\/\/europe\.contoso\.com\/Microsoft-Server-ActiveSync$/);
    expect(await result.locator("ol.trace li").count()).toBeGreaterThanOrEqual(4);
    expect(await page.getByLabel("User", { exact: true }).inputValue()).toBe("frank");
    // A URL the gateway cannot explain (the browser's own check lets ftp:// through) is said, not a stack trace.
    await page.getByLabel("Request URL").fill("ftp://usa.contoso.com/owa");
    await Promise.all([page.waitForLoadState("load"), page.getByRole("button", { name: "Explain" }).click()]);
    await page.locator("#explain-result p.bad").waitFor();
    expect(await page.locator("#explain-result").innerText()).toMatch(/Not explained: url: --url must be an absolute/);
  });

  it("is usable with labels and keyboard only, and its text has enough contrast (WCAG AA 4.5:1)", async () => {
    const page = await openPage();
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")].filter((el) => (el as HTMLInputElement).labels?.length === 0).map((el) => el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
    // The first Tab reaches the skip link, which takes the keyboard to the explain form.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to the explain form");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("x-url");
    const focusOutline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(focusOutline).toBe("solid");

    const lowContrast = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]: number[]) => {
        const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el: Element | null): number[] => {
        for (; el; el = el.parentElement) {
          const c = rgb(getComputedStyle(el).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const bad: string[] = [];
      for (const el of document.querySelectorAll("body *")) {
        const own = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent!.trim() !== "");
        if (!own || (el as HTMLElement).offsetParent === null) continue;
        const fg = lum(rgb(getComputedStyle(el).color));
        const bg = lum(background(el));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${el.textContent!.trim().slice(0, 40)}`);
      }
      return bad;
    });
    expect(lowContrast).toEqual([]);
  });

  it("answers loopback clients addressed by IP or localhost only (DNS rebinding guard)", async () => {
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port: running.adminPort, path: "/", headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject);
      });
    expect(await get(`localhost:${running.adminPort}`)).toBe(200);
    expect(await get(`127.0.0.1:${running.adminPort}`)).toBe(200);
    expect(await get("attacker.example")).toBe(403);
    const page = await fetch(`${admin}/`);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  });
});
