// The organisation page's HTML from a view built by hand: every value escaped, health shown in words
// (not colour alone), databases with their active server down, the decisions window, and the form's
// fields carried into the JSON /explain takes. The page in a browser: test/organisation-page.browser.test.ts.
import { describe, expect, it } from "vitest";
import { buildTopology } from "../../model/topology/build.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { formToQuery, renderOrganisationPage } from "./organisation-page.js";
import { databaseViews, serverRows, siteRows, ProblemClock, type OrganisationView } from "./organisation-view.js";
import { RecentDecisions } from "./recent-decisions.js";

const base = (over: Partial<OrganisationView> = {}): OrganisationView => ({
  component: "standalone",
  generatedAt: new Date("2026-01-02T03:04:05Z"),
  topologyVersion: "v1",
  ready: true,
  healthChecks: true,
  sites: [],
  servers: [],
  databases: [],
  problems: [],
  problemsSince: undefined,
  decisions: undefined,
  notRunning: [],
  ...over,
});

describe("organisation page HTML", () => {
  it("escapes everything that comes from configuration or requests", () => {
    const html = renderOrganisationPage(
      base({ ready: "<script>alert(1)</script>", problems: [{ source: "rejected edit", severity: "error", text: `a.yaml:1:1: "<img src=x onerror=alert(1)>"` }] }),
      { url: `https://x/"><script>`, user: "<b>frank</b>" },
      { error: "<svg onload=alert(1)>" },
    );
    expect(html).not.toMatch(/<script>alert|<img src=x|<svg onload|<b>frank/);
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain('value="https://x/&quot;&gt;&lt;script&gt;"');
  });

  it("shows health in words: servers and services down, databases whose active server is down", async () => {
    const org = await loadOrganisation("examples/contoso");
    const down = ["europe-mbx01", "usa-cas01/Owa"];
    const html = renderOrganisationPage(base({ sites: siteRows(org.topology), servers: serverRows(org.topology, down), databases: databaseViews(org.topology, down) }));
    expect(html).toMatch(/europe-mbx01<div class="fqdn">[^<]*<\/div><\/th><td>europe<\/td><td>Exchange 2010<\/td><td>Mailbox<\/td><td><span class="bad">✕ Down<\/span>/);
    expect(html).toMatch(/usa-cas01<div[^]*?<span class="warn">! Down: Owa<\/span>/);
    expect(html).toMatch(/<th scope="row">DB-EUR-2010<\/th><td>europe-mbx01 <span class="bad">✕ down<\/span>/);
    expect(html).toContain("2 with something down");
    const rows = serverRows(org.topology, []);
    // By site, then newest Exchange version first.
    expect(rows.filter((r) => r.site === "asia").map((r) => r.exchangeVersion)).toEqual(["2016", "2016", "2010", "2010"]);
    expect(serverRows(buildTopology([]), [])).toEqual([]);
  });

  it("turns the form into the JSON query of POST /explain", () => {
    const { query } = formToQuery(new URLSearchParams({ url: " https://usa.contoso.com/owa ", user: "frank", method: "GET", site: "", headers: "Cookie: a=b\r\n\r\nX-A: 1\n" }));
    expect(query).toEqual({ url: "https://usa.contoso.com/owa", user: "frank", method: "GET", header: ["Cookie: a=b", "X-A: 1"] });
  });

  it("lists the first problems and counts the rest", () => {
    const problems = Array.from({ length: 120 }, (_, i) => ({ source: "rejected edit", severity: "error" as const, text: `a.yaml:${i + 1}:1: bad` }));
    const html = renderOrganisationPage(base({ problems }));
    expect(html.match(/<li class="bad">/g)).toHaveLength(50);
    expect(html).toContain("<p>120 problems");
    expect(html).toContain("… and 70 more");
  });

  it("dates problems from when they changed", () => {
    let t = 0;
    const clock = new ProblemClock(() => new Date(t));
    const p = [{ source: "s", severity: "error" as const, text: "x" }];
    expect(clock.observe([])).toBeUndefined();
    t = 1000;
    expect(clock.observe(p)?.getTime()).toBe(1000);
    t = 2000;
    expect(clock.observe(p)?.getTime()).toBe(1000);
  });
});

describe("recent decisions", () => {
  it("counts what happened inside the window from cumulative totals", async () => {
    let now = 0;
    let totals = { byOutcome: new Map([["local", 5]]), byRule: new Map([["R-OWA-1", 5]]) };
    const r = new RecentDecisions(async () => totals, { windowMs: 60_000, everyMs: 10_000, now: () => now });
    await r.sample();
    for (let i = 1; i <= 12; i++) {
      now = i * 10_000;
      totals = { byOutcome: new Map([["local", 5 + i]]), byRule: new Map([["R-OWA-1", 5 + i], ["R-EAS-4", i]]) };
      await r.sample();
    }
    const s = await r.summary();
    // Samples at 60 s … 120 s are inside the window: 6 decisions since 60 s.
    expect(s.since.getTime()).toBe(60_000);
    expect(s.total).toBe(6);
    expect(s.byRule).toEqual([["R-EAS-4", 6], ["R-OWA-1", 6]]);
  });
});
