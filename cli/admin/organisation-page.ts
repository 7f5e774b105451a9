// The organisation page on the admin port: one server-rendered HTML page (every value escaped with
// `he`), a stylesheet and a small script served beside it (no build step, nothing downloaded). The
// explain form posts to /explain: with the script, as JSON, and the numbered trace is drawn in place;
// without it, as an ordinary form post answered with this page and the trace in it.
import he from "he";
import type { ExplainAnswer } from "./explain-endpoint.js";
import type { OrganisationView, ServerRow } from "./organisation-view.js";

export interface ExplainFormValues {
  readonly url?: string;
  readonly user?: string;
  readonly method?: string;
  readonly headers?: string;
  readonly site?: string;
}

export type ExplainOutcome = { readonly answer: ExplainAnswer } | { readonly error: string };

/** Problems listed on the page (the rest are counted and linked). */
export const MAX_PROBLEMS_SHOWN = 50;

const e = (s: unknown) => he.escape(String(s ?? ""));
const time = (d: Date) => `<time datetime="${e(d.toISOString())}">${e(d.toISOString().slice(11, 19))} UTC</time>`;

export function renderOrganisationPage(v: OrganisationView, form: ExplainFormValues = {}, explained?: ExplainOutcome): string {
  const title = `Exchange organisation — cas-gateway ${v.component}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<link rel="stylesheet" href="/assets/organisation.css">
<script src="/assets/organisation.js" defer></script>
</head>
<body>
<a class="skip" href="#explain">Skip to the explain form</a>
<header>
<h1>${e(title)}</h1>
<p class="meta">Configuration in force: <code>${e(v.topologyVersion ?? "none yet")}</code> · page made at ${time(v.generatedAt)} · <a href="/">Reload</a> · <a href="/config_dump">/config_dump</a> · <a href="/metrics">/metrics</a></p>
${statusLine(v)}
</header>
<main>
${sitesSection(v)}
${serversSection(v)}
${databasesSection(v)}
${problemsSection(v)}
${decisionsSection(v)}
${explainSection(v, form, explained)}
</main>
</body>
</html>
`;
}

function statusLine(v: OrganisationView): string {
  const items: string[] = [];
  items.push(v.ready === true ? `<li class="ok">Ready: answering requests.</li>` : `<li class="bad">Not ready: ${e(v.ready)}</li>`);
  if (!v.healthChecks && !v.notRunning.some((m) => m.startsWith("health prober"))) items.push(`<li class="warn">Health checks are off: every server is treated as healthy.</li>`);
  for (const m of v.notRunning) items.push(`<li class="warn">Not running: ${e(m)}</li>`);
  return `<ul class="status" aria-label="Gateway status">${items.join("")}</ul>`;
}

function sitesSection(v: OrganisationView): string {
  const rows = v.sites.map(
    (s) => `<tr><th scope="row">${e(s.name)}</th><td>${s.hostnames.length ? s.hostnames.map((h) => `<code>${e(h)}</code>`).join(", ") : "<span class=\"none\">none</span>"}</td><td>${s.internetFacing ? "Yes" : "No"}</td><td>${s.servers}</td><td>${e(s.description ?? "")}</td></tr>`,
  );
  return `<section aria-labelledby="sites-h">
<h2 id="sites-h">Sites</h2>
${rows.length ? `<table><caption>${v.sites.length} Active Directory site${v.sites.length === 1 ? "" : "s"}</caption><thead><tr><th scope="col">Site</th><th scope="col">Host names</th><th scope="col">Internet facing</th><th scope="col">Servers</th><th scope="col">Description</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : "<p>No configuration loaded yet.</p>"}
</section>`;
}

function healthCell(s: ServerRow, healthChecks: boolean): string {
  const parts: string[] = [];
  if (s.health.state === "down") parts.push(`<span class="bad">✕ Down</span>`);
  else if (s.health.state === "partly-down") parts.push(`<span class="warn">! Down: ${s.health.servicesDown.map(e).join(", ")}</span>`);
  else parts.push(healthChecks ? `<span class="ok">✓ Healthy</span>` : `<span class="muted">Not checked</span>`);
  if (s.maintenance) parts.push(`<span class="warn">in maintenance</span>`);
  return parts.join(" · ");
}

function serversSection(v: OrganisationView): string {
  const rows = v.servers.map(
    (s) =>
      `<tr><th scope="row">${e(s.name)}<div class="fqdn">${e(s.fqdn)}</div></th><td>${e(s.site)}</td><td>Exchange ${e(s.exchangeVersion)}</td><td>${e(s.roles)}</td><td>${healthCell(s, v.healthChecks)}</td><td class="services">${s.services.map(e).join(", ") || "—"}</td></tr>`,
  );
  const down = v.servers.filter((s) => s.health.state !== "healthy").length;
  return `<section aria-labelledby="servers-h">
<h2 id="servers-h">Servers</h2>
${rows.length ? `<table><caption>${v.servers.length} servers by site and Exchange version; ${down} with something down</caption><thead><tr><th scope="col">Server</th><th scope="col">Site</th><th scope="col">Version</th><th scope="col">Roles</th><th scope="col">Health</th><th scope="col">Services</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : "<p>No servers.</p>"}
</section>`;
}

function databasesSection(v: OrganisationView): string {
  const rows = v.databases.map((d) => {
    const copies = d.copies.map((c) => `${e(c.server)}${c.site ? ` (${e(c.site)})` : ""}${c.down ? ` <span class="bad">✕ down</span>` : ""}`).join(", ");
    return `<tr><th scope="row">${e(d.databaseName)}</th><td>${e(d.activeServer)}${d.activeServerDown ? ` <span class="bad">✕ down</span>` : ""}</td><td>${e(d.activeSite ?? "?")}</td><td>${copies}</td></tr>`;
  });
  return `<section aria-labelledby="databases-h">
<h2 id="databases-h">Mailbox databases</h2>
${rows.length ? `<table><caption>Where each database is active now, and its copies</caption><thead><tr><th scope="col">Database</th><th scope="col">Active on</th><th scope="col">Site</th><th scope="col">Copies</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : "<p>No databases.</p>"}
</section>`;
}

function problemsSection(v: OrganisationView): string {
  // A rejected export can carry thousands of errors: the first ones here, all of them in /config_dump.
  const shown = v.problems.slice(0, MAX_PROBLEMS_SHOWN);
  const items = shown.map((p) => `<li class="${p.severity === "error" ? "bad" : "warn"}"><strong>${p.severity === "error" ? "Error" : "Warning"}</strong> (${e(p.source)}): <code>${e(p.text)}</code></li>`);
  return `<section aria-labelledby="problems-h">
<h2 id="problems-h">Configuration problems</h2>
${items.length ? `<p>${v.problems.length} problem${v.problems.length === 1 ? "" : "s"}${v.problemsSince ? `, as they stand since ${time(v.problemsSince)}` : ""}. A rejected edit leaves the last good configuration in force.</p><ul class="problems">${items.join("")}</ul>${v.problems.length > shown.length ? `<p>… and ${v.problems.length - shown.length} more: every one in <a href="/config_dump">/config_dump</a>.</p>` : ""}` : "<p>None: the files in force were accepted without errors or warnings.</p>"}
</section>`;
}

function decisionsSection(v: OrganisationView): string {
  const d = v.decisions;
  if (!d) return `<section aria-labelledby="decisions-h"><h2 id="decisions-h">Decisions</h2><p>Not counted here.</p></section>`;
  const table = (caption: string, head: string, rows: readonly (readonly [string, number])[]) =>
    rows.length
      ? `<table class="counts"><caption>${caption}</caption><thead><tr><th scope="col">${head}</th><th scope="col">Count</th></tr></thead><tbody>${rows.map(([k, n]) => `<tr><th scope="row"><code>${e(k)}</code></th><td>${n}</td></tr>`).join("")}</tbody></table>`
      : "";
  const minutes = Math.max(0, Math.round((d.until.getTime() - d.since.getTime()) / 60_000));
  return `<section aria-labelledby="decisions-h">
<h2 id="decisions-h">${minutes < d.windowMinutes ? `Decisions since start (${minutes < 1 ? "under a minute" : `${minutes} minute${minutes === 1 ? "" : "s"}`} ago)` : `Decisions in the last ${d.windowMinutes} minutes`}</h2>
<p>${d.total} decision${d.total === 1 ? "" : "s"} since ${time(d.since)}. Rule IDs are those of the project's rule book (docs/rules.md).</p>
<div class="pair">${table("By outcome", "Outcome", d.byOutcome)}${table("By rule", "Rule", d.byRule)}</div>
</section>`;
}

function explainSection(v: OrganisationView, f: ExplainFormValues, explained: ExplainOutcome | undefined): string {
  const methods = ["GET", "POST", "OPTIONS", "PROPFIND"];
  const method = f.method ?? "GET";
  const siteOptions = [`<option value="">(from the Host name)</option>`, ...v.sites.map((s) => `<option value="${e(s.name)}"${f.site === s.name ? " selected" : ""}>${e(s.name)}</option>`)];
  return `<section id="explain" aria-labelledby="explain-h" tabindex="-1">
<h2 id="explain-h">Why did this user get that page?</h2>
<p>Asks this gateway (<code>POST /explain</code>): the decision it would take now, with the configuration, directory and health it holds, and the numbered steps that led there.</p>
<form id="explain-form" method="post" action="/explain">
<div class="field"><label for="x-url">Request URL</label>
<input id="x-url" name="url" type="url" required size="70" value="${e(f.url ?? "")}" aria-describedby="x-url-hint" placeholder="https://usa.contoso.com/owa/">
<p class="hint" id="x-url-hint">As the client sent it, e.g. <code>https://usa.contoso.com/Microsoft-Server-ActiveSync?Cmd=Sync&amp;User=frank&amp;DeviceId=1&amp;DeviceType=x</code>; <code>imap://host</code> or <code>pop3://host</code> for a mail login.</p></div>
<div class="field"><label for="x-user">User</label>
<input id="x-user" name="user" type="text" autocomplete="off" value="${e(f.user ?? "")}" aria-describedby="x-user-hint">
<p class="hint" id="x-user-hint">The authenticated user: frank, CONTOSO\\frank or frank@contoso.com.</p></div>
<div class="row">
<div class="field"><label for="x-method">Method</label>
<select id="x-method" name="method">${methods.map((m) => `<option${m === method ? " selected" : ""}>${m}</option>`).join("")}</select></div>
<div class="field"><label for="x-site">Receiving site</label>
<select id="x-site" name="site">${siteOptions.join("")}</select></div>
</div>
<div class="field"><label for="x-headers">Headers (one <code>Name: value</code> a line)</label>
<textarea id="x-headers" name="headers" rows="2" cols="70" aria-describedby="x-headers-hint">${e(f.headers ?? "")}</textarea>
<p class="hint" id="x-headers-hint">A <code>Cookie:</code> header with the gateway's affinity cookie shows the pin it holds.</p></div>
<button type="submit">Explain</button>
</form>
<div id="explain-result" role="status" aria-live="polite">${explained ? explainResult(explained) : ""}</div>
</section>`;
}

/** The answer, as the script draws it too: the decision line, the numbered trace, the rules. */
export function explainResult(x: ExplainOutcome): string {
  if ("error" in x) return `<p class="bad"><strong>Not explained:</strong> ${e(x.error)}</p>`;
  const a = x.answer;
  const first = a.text.split("\n")[0] ?? "";
  return `<h3>${e(first)}</h3>
<ol class="trace">${a.decision.trace.map((t) => `<li>${e(t)}</li>`).join("")}</ol>
<p>Rules: ${a.decision.rules.length ? a.decision.rules.map((r) => `<code>${e(r)}</code>`).join(", ") : "(none)"}</p>
<p class="meta">Configuration <code>${e(a.topologyVersion ?? "none")}</code>${a.pinnedServer ? ` · pinned to ${e(a.pinnedServer)}` : ""} · down: ${a.down.length ? a.down.map(e).join(", ") : "nothing"}</p>`;
}

/** Form fields (application/x-www-form-urlencoded) to the JSON /explain takes. */
export function formToQuery(fields: URLSearchParams): { query: Record<string, unknown>; form: ExplainFormValues } {
  const get = (k: string) => {
    const v = fields.get(k)?.trim();
    return v ? v : undefined;
  };
  const headers = (fields.get("headers") ?? "").split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const form: ExplainFormValues = { url: fields.get("url") ?? "", user: fields.get("user") ?? "", method: get("method"), headers: fields.get("headers") ?? "", site: get("site") };
  const query: Record<string, unknown> = { url: get("url") ?? "" };
  for (const k of ["user", "method", "site"] as const) {
    const v = get(k);
    if (v !== undefined) query[k] = v;
  }
  if (headers.length) query.header = headers;
  return { query, form };
}

export const ORGANISATION_CSS = `:root{color-scheme:light;--fg:#1b1b1b;--muted:#4a4a4a;--bg:#fff;--line:#c8c8c8;--head:#f1f3f5;--link:#0b57d0;--ok:#1b6e20;--warn:#8a4b00;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0 auto;max-width:78rem;padding:1rem 1.5rem 3rem;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link)}
code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.92em}
h1{font-size:1.5rem;margin:.5rem 0}
h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1rem 0 .4rem}
.meta,.hint,.fqdn,.muted{color:var(--muted);font-size:.9rem}
.hint{margin:.2rem 0 0}
.fqdn{font-weight:normal}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem}
.skip:focus{left:1rem}
:focus-visible{outline:3px solid var(--link);outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem}
caption{text-align:left;color:var(--muted);font-size:.9rem;padding:.2rem 0}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--head)}
tbody th{font-weight:600}
td.services{font-size:.85rem}
.counts{width:auto;min-width:16rem}
.counts td{text-align:right}
.pair{display:flex;flex-wrap:wrap;gap:0 2rem;align-items:flex-start}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
ul.status{list-style:none;padding:0;margin:.3rem 0}
ul.problems{padding-left:1.2rem}
ul.problems li{margin:.3rem 0}
ul.problems code{color:var(--fg)}
form{border:1px solid var(--line);padding:1rem;border-radius:4px;max-width:52rem}
.field{margin:0 0 .8rem}
.row{display:flex;gap:1.5rem;flex-wrap:wrap}
label{display:block;font-weight:600;margin-bottom:.2rem}
input,select,textarea{font:inherit;color:var(--fg);background:var(--bg);border:1px solid #767676;border-radius:3px;padding:.3rem .4rem;max-width:100%}
input[type=url],textarea{width:100%}
button{font:inherit;font-weight:600;color:#fff;background:var(--link);border:0;border-radius:3px;padding:.45rem 1.2rem;cursor:pointer}
#explain-result{margin-top:1rem}
ol.trace li{margin:.15rem 0}
`;

/** Posts the form as JSON and draws the answer with text nodes only (nothing from the answer is parsed as HTML). */
export const ORGANISATION_JS = `"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("explain-form");
  var out = document.getElementById("explain-result");
  if (!form || !out) return;
  function el(tag, text, cls) { var n = document.createElement(tag); if (text !== undefined) n.textContent = text; if (cls) n.className = cls; return n; }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = new FormData(form);
    var q = { url: String(f.get("url") || "").trim() };
    ["user", "method", "site"].forEach(function (k) { var v = String(f.get(k) || "").trim(); if (v) q[k] = v; });
    var headers = String(f.get("headers") || "").split(/\\r?\\n/).map(function (l) { return l.trim(); }).filter(Boolean);
    if (headers.length) q.header = headers;
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    out.replaceChildren(el("p", "Asking the gateway…"));
    fetch("/explain", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(q) })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
      .then(function (r) {
        out.replaceChildren();
        if (r.status !== 200) {
          var p = el("p", undefined, "bad"); p.append(el("strong", "Not explained: "), String(r.body && r.body.error || ("HTTP " + r.status)));
          out.append(p);
          return;
        }
        var a = r.body;
        out.append(el("h3", String(a.text).split("\\n")[0]));
        var ol = el("ol", undefined, "trace");
        a.decision.trace.forEach(function (t) { ol.append(el("li", t)); });
        out.append(ol);
        var rules = el("p", "Rules: ");
        if (a.decision.rules.length === 0) rules.append("(none)");
        a.decision.rules.forEach(function (id, i) { if (i) rules.append(", "); rules.append(el("code", id)); });
        out.append(rules);
        var meta = el("p", undefined, "meta");
        meta.append("Configuration ", el("code", String(a.topologyVersion || "none")), (a.pinnedServer ? " · pinned to " + a.pinnedServer : "") + " · down: " + (a.down.length ? a.down.join(", ") : "nothing"));
        out.append(meta);
      })
      .catch(function (err) { out.replaceChildren(el("p", "Not explained: " + err, "bad")); })
      .finally(function () { if (button) button.disabled = false; });
  });
});
`;
