// Offline Address Book (R-OAB-1), Autodiscover (R-AUTOD-1), Outlook MAPI/RPC over HTTP (R-OUT-1..3),
// remote PowerShell.
import type { ServerInfo, VersionClass } from "../../../model/topology/types.js";
import { Ctx, isError } from "../context.js";
import { mailboxGuidOf } from "../identity.js";
import { queryOf } from "../service.js";
import { serviceIndex } from "../topology-index.js";
import type { Decision } from "../types.js";
import { targetInMailboxSite } from "./common.js";

export function decideAutodiscover(ctx: Ctx): Decision {
  const S = ctx.mailboxSite ?? ctx.local;
  ctx.rule("R-AUTOD-1", () => `routed by the e-mail address it carries (${ctx.identity?.source}) to a CAS in site ${S.info.name}`);
  if (ctx.version === 2003) {
    // No Autodiscover on Exchange 2003: the site's newest CAS answers for the legacy mailbox.
    const cls: VersionClass | undefined = serviceIndex(S, "Autodiscover").classes[0];
    if (!cls) return ctx.error(502, "No server is set up to answer for your mailbox. Contact your administrator.", "R-GEN-2", () => `no Autodiscover directory in site ${S.info.name}`);
    const t = ctx.pick(S, cls, { mode: "pool", crossSite: !ctx.sameSite, requireIwa: !ctx.sameSite, combined: false });
    return isError(t) ? t : ctx.route(t);
  }
  const t = targetInMailboxSite(ctx, "pool");
  return isError(t) ? t : ctx.route(t);
}

export function decideOutlook(ctx: Ctx): Decision {
  const svc = ctx.service; // Mapi | RpcHttp
  const v = ctx.version ?? 2010;
  if (svc === "Mapi" && v < 2013) {
    return ctx.error(404, "MAPI over HTTP is not available for your mailbox.", "R-GEN-2", () => `MAPI over HTTP exists from Exchange 2013; the mailbox is on Exchange ${v}`);
  }
  streamed(ctx);
  const S = ctx.mailboxSite ?? ctx.local;
  const src = ctx.identity?.source;
  if (src === "mapi-mailboxid" || src === "rpc-mailboxid") {
    ctx.rule("R-OUT-1", () => `the connection point <mailbox GUID>@<domain> names the mailbox: routed to site ${S.info.name}`);
  } else if (svc === "RpcHttp" && (v === 2007 || v === 2010)) {
    // R-OUT-2: Outlook Anywhere for 2007/2010 names the RPC endpoint server; its site decides.
    const named = namedRpcServer(ctx);
    if (named) return routeToNamedServer(ctx, named.server, named.port);
    ctx.note(() => `no known server named in the RPC proxy target; routed by ${src} to the mailbox's site ${S.info.name}`);
  } else {
    ctx.note(() => `no <mailbox GUID>@<domain> connection point; routed by ${src}`);
  }
  if (v === 2003) {
    const a = ctx.active;
    if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
    const t = ctx.pickServer(a, { crossSite: !ctx.sameSite, requireIwa: !ctx.sameSite });
    return isError(t) ? t : ctx.route(t);
  }
  // R-OUT-3: before 2013 both channels of an RPC over HTTP session must meet on one RPC proxy: one
  // server, chosen the same way for both (the identity, else the client address).
  const t = targetInMailboxSite(ctx, svc === "RpcHttp" && ctx.cls !== "2013+" ? "server" : "pool");
  return isError(t) ? t : ctx.route(t);
}

/**
 * Outlook Anywhere without a known mailbox (the NTLM negotiate message of a new connection, or a
 * name the directory does not know): a request that names a known server (R-OUT-2) goes to its
 * site; otherwise undefined (the receiving site answers).
 */
export function decideOutlookWithoutMailbox(ctx: Ctx): Decision | undefined {
  if (ctx.service !== "RpcHttp") return undefined;
  const named = namedRpcServer(ctx);
  if (!named) return undefined;
  streamed(ctx);
  return routeToNamedServer(ctx, named.server, named.port);
}

const RPC_PORTS: Readonly<Record<number, string>> = { 6001: "the store", 6002: "the directory referral service", 6004: "the address book" };

/** R-OUT-3: RPC_IN_DATA / RPC_OUT_DATA and MAPI over HTTP are long-lived streams. */
function streamed(ctx: Ctx): void {
  const m = ctx.req.method;
  if (m === "RPC_IN_DATA" || m === "RPC_OUT_DATA") {
    ctx.rule("R-OUT-3", () => `${m} is one channel of an RPC over HTTP session: a long-lived request streamed as it is produced (never buffered, no whole-request timeout)`);
  } else if (ctx.service === "Mapi") {
    ctx.rule("R-OUT-3", "MAPI over HTTP: chunked answers and long polls are streamed (never buffered, no whole-request timeout)");
  }
}

/** The RPC proxy target of `/rpc/rpcproxy.dll?<host>:<port>` (or `RpcProxy=<host>:<port>`) when it is a server name, not a <GUID>@<domain>. */
export function rpcProxyTarget(path: string): { host: string; port?: number } | undefined {
  const q = queryOf(path);
  if (q.length === 0 || q.length > 1024) return undefined;
  let target: string;
  try {
    if (q.includes("=")) {
      const part = q.split("&").find((p) => p.slice(0, p.indexOf("=")).toLowerCase() === "rpcproxy");
      if (part === undefined) return undefined;
      target = decodeURIComponent(part.slice(part.indexOf("=") + 1));
    } else {
      target = decodeURIComponent(q);
    }
  } catch {
    return undefined;
  }
  if (mailboxGuidOf(target) !== undefined) return undefined;
  const colon = target.lastIndexOf(":");
  const host = colon < 0 ? target : target.slice(0, colon);
  const portText = colon < 0 ? "" : target.slice(colon + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(host) || (portText !== "" && !/^\d{1,5}$/.test(portText))) return undefined;
  return portText === "" ? { host } : { host, port: Number(portText) };
}

/** The known server the RPC proxy target names (R-SEC-1: only a known server is ever used). */
function namedRpcServer(ctx: Ctx): { server: ServerInfo; port?: number } | undefined {
  const t = rpcProxyTarget(ctx.req.path);
  if (!t) return undefined;
  const server = ctx.index.findServer(t.host);
  if (!server) {
    ctx.note(() => `RPC proxy target ${t.host} is not a server of the topology (a CAS array or another name): not used to route`);
    return undefined;
  }
  return { server, ...(t.port !== undefined ? { port: t.port } : {}) };
}

/** R-OUT-2: to the site of the server Outlook named: that server when it has the RPC proxy itself, else a CAS of its site and version. */
function routeToNamedServer(ctx: Ctx, s: ServerInfo, port: number | undefined): Decision {
  const site = ctx.index.sites.get(s.site);
  if (!site) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.", "R-ENG-UNKNOWN-DATABASE", () => `site ${s.site} of server ${s.name} is not in the topology`);
  const crossSite = s.site !== ctx.local.info.name;
  ctx.rule("R-OUT-2", () => `Outlook Anywhere names server ${s.name}${port !== undefined ? ` port ${port}${RPC_PORTS[port] ? ` (${RPC_PORTS[port]})` : ""}` : ""}: routed to its site ${s.site}`);
  if (s.vdirs.has("RpcHttp") && ctx.usable(s)) {
    const t = ctx.pickServer(s, { crossSite, requireIwa: crossSite });
    return isError(t) ? t : ctx.route(t);
  }
  const cls = s.versionClass === "2003" ? "2010" : s.versionClass;
  const t = ctx.pick(site, cls, { mode: cls === "2013+" ? "pool" : "server", crossSite, requireIwa: crossSite, combined: false });
  return isError(t) ? t : ctx.route(t);
}

export function decidePowerShell(ctx: Ctx): Decision {
  const v = ctx.version ?? 2010;
  if (v < 2010) {
    return ctx.error(404, "Remote PowerShell is not available for your mailbox.", "R-GEN-2", () => `remote PowerShell exists from Exchange 2010; the mailbox is on Exchange ${v}`);
  }
  ctx.note(() => `remote PowerShell follows the mailbox to site ${(ctx.mailboxSite ?? ctx.local).info.name}`);
  const t = targetInMailboxSite(ctx, "pool");
  return isError(t) ? t : ctx.route(t);
}

const OAB_PATH_RE = /^\/oab\/\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?(?:[/?#]|$)/i;

/** The OAB GUID a download names (/OAB/<guid>/oab.xml), lower-case, or undefined. */
export function oabGuidOf(path: string): string | undefined {
  const m = OAB_PATH_RE.exec(path);
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * R-OAB-2: from Exchange 2013 an OAB is generated in an organisation mailbox and every download is
 * proxied to the server holding that mailbox's database's active copy, in whatever site. Undefined
 * when R-OAB-1 applies (no OAB named, one not configured, or one generated before 2013).
 */
export function decideOab(ctx: Ctx): Decision | undefined {
  const guid = oabGuidOf(ctx.req.path);
  if (guid === undefined) return undefined;
  const entry = ctx.index.offlineAddressBooks.get(guid);
  if (!entry) {
    ctx.note(() => `OAB ${guid} is not configured on any MailboxDatabase (spec.offlineAddressBooks)`);
    return undefined;
  }
  const { oab, database } = entry;
  const active = ctx.topology.servers.get(database.activeServer);
  const site = active ? ctx.index.sites.get(active.site) : undefined;
  if (!active || !site) {
    return ctx.error(502, "The offline address book could not be located. Contact your administrator.", "R-OAB-2", () => `OAB ${guid} is generated in database ${database.name}, whose active server is not in the topology`);
  }
  if (active.version < 2013) {
    ctx.note(() => `OAB ${oab.name ?? guid} is generated on Exchange ${active.version} (database ${database.name}): R-OAB-1 applies`);
    return undefined;
  }
  ctx.active = active;
  ctx.version = active.version;
  ctx.cls = active.versionClass;
  ctx.mailboxSite = site;
  ctx.rule("R-OAB-2", () => `OAB ${oab.name ? `"${oab.name}" ` : ""}${guid} is generated by ${oab.generatingMailbox} in database ${database.databaseName}, active copy on ${active.name} (site ${active.site}): the download goes there`);
  const t = targetInMailboxSite(ctx, "pool");
  return isError(t) ? t : ctx.route(t);
}
