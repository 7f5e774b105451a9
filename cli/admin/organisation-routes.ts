// The admin port's read-only administrator routes: the organisation page (GET /), its stylesheet
// and script, and POST /explain (JSON, or the page's form without script). No login: they answer
// only clients on loopback (kubectl port-forward arrives there too) and requests addressed to an IP
// or localhost (so a web page cannot reach them through DNS rebinding), unless the process was told
// to serve them to the network (--admin-pages-remote; the chart sets it only from an explicit value).
import type http from "node:http";
import { isIP } from "node:net";
import { answerExplain, readJsonBody, MAX_EXPLAIN_BODY, type ExplainAnswer, type ExplainContext } from "./explain-endpoint.js";
import { ORGANISATION_CSS, ORGANISATION_JS, formToQuery, renderOrganisationPage } from "./organisation-page.js";
import type { OrganisationView } from "./organisation-view.js";

export interface AdminPagesContext {
  readonly view: () => Promise<OrganisationView>;
  readonly explain: ExplainContext;
  /** Serve the page and /explain to clients that are not on loopback (an explicit choice). */
  readonly allowRemote?: boolean;
}

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** Paths these routes answer (for the admin servers' "not found: try ..." lists). */
export const ADMIN_PAGE_PATHS = ["/", "/explain"] as const;

const isLoopback = (a: string | undefined) => !!a && (a === "::1" || a.startsWith("127.") || a.startsWith("::ffff:127."));

function hostOk(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "");
  return isIP(name) !== 0 || name === "localhost" || name.endsWith(".localhost");
}

/** Answer the request if it is one of these routes; false when it is not (the caller goes on). */
export async function handleAdminPages(req: http.IncomingMessage, res: http.ServerResponse, ctx: AdminPagesContext): Promise<boolean> {
  const path = (req.url ?? "/").split("?")[0];
  const isPage = path === "/" || path === "/organisation";
  const isAsset = path === "/assets/organisation.css" || path === "/assets/organisation.js";
  if (!isPage && !isAsset && path !== "/explain") return false;
  const method = req.method ?? "GET";
  if (path === "/explain" ? method !== "POST" : method !== "GET" && method !== "HEAD") {
    res.writeHead(405, { allow: path === "/explain" ? "POST" : "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    return true;
  }
  if (!ctx.allowRemote) {
    if (!isLoopback(req.socket.remoteAddress)) {
      res.writeHead(403, { "content-type": "text/plain" }).end("the organisation page and /explain answer loopback clients only (use kubectl port-forward, or start with --admin-pages-remote)\n");
      return true;
    }
    if (!hostOk(req.headers.host)) {
      res.writeHead(403, { "content-type": "text/plain" }).end("address this port by IP or localhost (a Host name is refused: DNS rebinding guard)\n");
      return true;
    }
  }
  if (isAsset) {
    const css = path.endsWith(".css");
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": css ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8" }).end(method === "HEAD" ? undefined : css ? ORGANISATION_CSS : ORGANISATION_JS);
    return true;
  }
  if (isPage) {
    const html = renderOrganisationPage(await ctx.view());
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8" }).end(method === "HEAD" ? undefined : html);
    return true;
  }
  await serveExplain(req, res, ctx);
  return true;
}

async function serveExplain(req: http.IncomingMessage, res: http.ServerResponse, ctx: AdminPagesContext): Promise<void> {
  const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(`${JSON.stringify(body, null, 2)}\n`);
  // The page's form without script: answer with the page and the trace in it.
  if ((req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
    const text = await readText(req, MAX_EXPLAIN_BODY);
    const { query, form } = formToQuery(new URLSearchParams(text ?? ""));
    let outcome: { answer: ExplainAnswer } | { error: string };
    let status = 200;
    if (text === undefined) {
      outcome = { error: `form over ${MAX_EXPLAIN_BODY} bytes` };
      status = 413;
    } else {
      const r = await answerExplain(query, ctx.explain).catch((err: unknown) => ({ status: 500, body: { error: err instanceof Error ? err.message : String(err) } }));
      status = r.status;
      outcome = r.status === 200 ? { answer: r.body as ExplainAnswer } : { error: (r.body as { error?: string }).error ?? `HTTP ${r.status}` };
    }
    const html = renderOrganisationPage(await ctx.view(), form, outcome);
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8" }).end(html);
    return;
  }
  try {
    const body = await readJsonBody(req);
    if (!body.ok) return void json(400, { error: body.error });
    const r = await answerExplain(body.value, ctx.explain);
    json(r.status, r.body);
  } catch (err) {
    json(500, { error: err instanceof Error ? err.message : String(err) });
  }
}

async function readText(req: http.IncomingMessage, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) return undefined;
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}
