// The manual-redirect page and the SSO form in a real browser (headless Chromium via playwright-core).
// Pages come out of the sidecar's full pipeline (DecisionService → CheckResponse.denied_response) and
// are served as Envoy would send them (status, headers, body) from a loopback HTTP server; the SSO
// target is a loopback HTTPS server with a self-signed certificate that records the POST.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiObject } from "../../crds/index.js";
import { loadManifestDir } from "../../operator/provider/manifests.js";
import { buildTopology } from "../../model/topology/build.js";
import { AffinitySigner } from "../../sidecar/authz/affinity.js";
import { DecisionService } from "../../sidecar/authz/decision-service.js";
import { SidecarMetrics } from "../../sidecar/authz/metrics.js";
import type { Decision } from "../../sidecar/decision/types.js";
import { ALL_HEALTHY } from "../../model/health.js";
import { SettableStateSource } from "../../model/state.js";
import { envoyCheckRequest, headerMap, type CheckResponseIn } from "./envoy-request.js";
import { scriptedEngine } from "./scripted-engine.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);

interface Posted {
  path: string;
  fields: Record<string, string>;
}

let tmp: string;
let target: https.Server;
let plainTarget: http.Server;
let pageServer: http.Server;
let browser: Browser;
let targetUrl: string;
let plainTargetUrl: string;
const posts: Posted[] = [];
let currentPage: CheckResponseIn | undefined;
let svc: DecisionService;
let script: () => Decision = () => {
  throw new Error("no script");
};

const listen = (s: http.Server | https.Server) =>
  new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)));

function recordPost(req: http.IncomingMessage, res: http.ServerResponse) {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    if (req.method === "POST") posts.push({ path: req.url ?? "", fields: Object.fromEntries(new URLSearchParams(body)) });
    res.writeHead(200, { "content-type": "text/html" }).end("<!DOCTYPE html><title>target</title><p>signed in</p>");
  });
}

beforeAll(async () => {
  if (!haveChromium) return;
  tmp = mkdtempSync(path.join(tmpdir(), "cas-pages-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1",
    "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem"),
  ], { stdio: "ignore" });
  target = https.createServer({ key: readFileSync(path.join(tmp, "key.pem")), cert: readFileSync(path.join(tmp, "cert.pem")) }, recordPost);
  plainTarget = http.createServer(recordPost);
  targetUrl = `https://127.0.0.1:${await listen(target)}/owa`;
  plainTargetUrl = `http://127.0.0.1:${await listen(plainTarget)}/owa`;
  pageServer = http.createServer((_req, res) => {
    const d = currentPage?.denied_response;
    const status = { OK: 200, Found: 302 }[String(d?.status?.code)] ?? 500;
    const headers = headerMap(d?.headers);
    res.writeHead(status, headers).end(d?.body ?? "");
  });
  await listen(pageServer);

  // Contoso with two OWA ExternalUrls pointed at the loopback targets, so they are configured URLs.
  const set = await loadManifestDir("examples/contoso");
  const objects = set.objects.map((o) => structuredClone(o.object)) as ApiObject[];
  for (const o of objects) {
    if (o.kind !== "VirtualDirectory") continue;
    if (o.metadata.name === "europe-cas01-owa") (o.spec as { externalUrl: string | null }).externalUrl = targetUrl;
    if (o.metadata.name === "usa-cas02-owa") (o.spec as { externalUrl: string | null }).externalUrl = plainTargetUrl;
  }
  const topology = buildTopology(objects);
  svc = new DecisionService({
    state: new SettableStateSource({ topology, health: ALL_HEALTHY, version: topology.version }),
    directory: { lookup: async () => ({ status: "not-found" }) },
    engine: scriptedEngine(() => script()),
    affinity: new AffinitySigner(Buffer.alloc(32, 1)),
    logger: pino({ level: "silent" }),
    metrics: new SidecarMetrics(),
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const s of [target, plainTarget, pageServer]) if (s) await new Promise((r) => s.close(() => r(undefined)));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function pageFor(decision: Decision, init: Parameters<typeof envoyCheckRequest>[0]): Promise<CheckResponseIn> {
  script = () => decision;
  currentPage = (await svc.check(envoyCheckRequest(init))) as CheckResponseIn;
  return currentPage;
}

const pageUrl = () => `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/owa/`;

describe.skipIf(!haveChromium)("sidecar pages in headless Chromium", () => {
  it("R-OWA-2 manual page: accessible, the link points at the target, no CSP violation", async () => {
    await pageFor({ outcome: "redirect", kind: "manual", url: targetUrl, rules: ["R-OWA-2"], trace: [] }, { host: "usa.contoso.com", path: "/owa/" });
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(pageUrl());
    expect(await page.getAttribute("html", "lang")).toBe("en");
    expect(await page.title()).toMatch(/different address/i);
    const link = page.getByRole("link");
    expect(await link.getAttribute("href")).toBe(targetUrl);
    // Styles carry the nonce: the heading is styled, not blocked.
    expect(await page.evaluate(() => getComputedStyle(document.body).fontFamily)).toMatch(/system-ui|sans-serif/);
    expect(violations).toEqual([]);
    await ctx.close();
  });

  it("R-OWA-3 SSO form posts destination, flags, username and password to the HTTPS target's auth.owa by itself", async () => {
    posts.length = 0;
    const password = `p&ss"<w>rd'é`;
    await pageFor(
      { outcome: "redirect", kind: "sso", url: targetUrl, rules: ["R-OWA-3"], trace: [] },
      {
        host: "usa.contoso.com",
        path: "/owa/auth.owa",
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ destination: "https://usa.contoso.com/owa", flags: "4", username: "contoso\\frank", password }).toString(),
      },
    );
    expect(headerMap(currentPage?.denied_response?.headers)["x-cas-decision"]).toBe("redirect-sso");
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(pageUrl());
    await page.waitForURL(/auth\.owa/, { timeout: 15_000 });
    await expect.poll(() => posts.length, { timeout: 10_000 }).toBe(1);
    expect(posts[0].path).toBe("/owa/auth.owa");
    expect(posts[0].fields).toMatchObject({ destination: targetUrl, flags: "4", username: "contoso\\frank", password });
    expect(violations).toEqual([]);
    await ctx.close();
  });

  it("R-OWA-3 credentials are never posted to an http target: the manual page instead", async () => {
    posts.length = 0;
    const r = await pageFor(
      { outcome: "redirect", kind: "sso", url: plainTargetUrl, rules: ["R-OWA-3"], trace: [] },
      { host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from("frank:topsecret").toString("base64")}` } },
    );
    expect(headerMap(r.denied_response?.headers)["x-cas-decision"]).toBe("redirect-manual");
    expect(r.denied_response?.body).not.toContain("topsecret");
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(pageUrl());
    expect(await page.getByRole("link").getAttribute("href")).toBe(plainTargetUrl);
    await page.waitForTimeout(300);
    expect(posts).toEqual([]);
    await ctx.close();
  });

  it("hostile values are escaped, never reflected raw", async () => {
    const r = await pageFor(
      { outcome: "redirect", kind: "sso", url: targetUrl, rules: ["R-OWA-3"], trace: [] },
      { host: "usa.contoso.com", path: "/owa/", headers: { authorization: `Basic ${Buffer.from(`"><script>alert(1)</script>:x`).toString("base64")}` } },
    );
    expect(r.denied_response?.body).not.toContain("<script>alert(1)");
    expect(r.denied_response?.body).toContain("&#x3C;script&#x3E;alert(1)");
  });
});

if (!haveChromium) {
  describe("sidecar pages in headless Chromium", () => {
    it.skip("needs Debian chromium at /usr/bin/chromium (scripts/test-deps.txt)", () => {});
  });
}
