// Exchange ActiveSync (R-EAS-1..8, R-LB-3).
import { Ctx, isError, type Picked } from "../context.js";
import { parseEasQuery } from "../eas-query.js";
import { queryOf } from "../service.js";
import type { ClientRequest, Decision } from "../types.js";
import { targetInMailboxSite } from "./common.js";

/** R-EAS-6: a proxy target that does not answer is an error to the device, never a retry elsewhere. */
function noRetry(ctx: Ctx, p: Picked): Picked {
  if (isError(p) && p.status === 503) {
    ctx.rule("R-EAS-6", "the ActiveSync target does not answer: the device gets an error, no retry in another site");
  }
  return p;
}

export function decideEas(ctx: Ctx): Decision {
  const v = ctx.version ?? 2010;
  const S = ctx.mailboxSite ?? ctx.local;
  const crossSite = !ctx.sameSite;

  if (v === 2003) {
    const a = ctx.active;
    if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
    ctx.rule("R-EAS-1", () => `Exchange 2003 mailbox: proxied directly to ${a.name}'s /Microsoft-Server-ActiveSync, which must use Integrated Windows authentication`);
    const t = noRetry(ctx, ctx.pickServer(a, { crossSite, requireIwa: true, iwaRule: "R-EAS-1" }));
    return isError(t) ? t : ctx.route(t);
  }

  if (v === 2007) {
    ctx.rule("R-EAS-2", () => `Exchange 2007 mailbox: proxied to a 2007 CAS of site ${S.info.name} at its InternalUrl's /Proxy, whatever its ExternalUrl`);
    const t = noRetry(ctx, ctx.pick(S, "2007", { mode: "pool", crossSite, requireIwa: true, iwaRule: "R-EAS-2" }));
    if (isError(t)) return t;
    if (!t.server) ctx.rule("R-LB-3", "the target's InternalUrl pool is used round robin");
    return ctx.route(t, "eas-proxy");
  }

  if (!crossSite) {
    ctx.rule("R-EAS-3", () => `Exchange ${v} mailbox in the receiving site ${ctx.local.info.name}: served locally`);
    const t = noRetry(ctx, targetInMailboxSite(ctx, "pool"));
    if (isError(t)) return t;
    if (!t.server) ctx.rule("R-LB-3", "ActiveSync is stateless: round robin over the pool");
    return ctx.route(t);
  }

  const ext = ctx.externalUrlIn(S, ctx.cls ?? "2010");
  if (ext && !S.info.internetFacing) {
    ctx.rule("R-GEN-4", () => `site ${S.info.name} is not internet facing: reached only by proxy, never by redirect`);
  }
  let oldDevice: EasProtocolVersion | undefined;
  if (ext && S.info.internetFacing) {
    ctx.rule("R-GEN-5", () => `site ${S.info.name}'s ActiveSync directory has an ExternalUrl and ActiveSync can be redirected`);
    const pv = easProtocolVersion(ctx.req);
    if (pv.version >= 14) {
      ctx.rule("R-EAS-7", () => `the device speaks ActiveSync ${pv.text} (${pv.source}): it follows a cross-site 451`);
      const location = easLocation(ext.url);
      ctx.rule("R-EAS-4", () => `mailbox in site ${S.info.name}: HTTP 451 with X-MS-Location ${location}; the device reconfigures itself`);
      ctx.rule("R-EAS-8", () => location === ext.url ? "X-MS-Location is the complete ActiveSync URL of the target" : `X-MS-Location is the complete ActiveSync URL of the target (${location}, from the configured ${ext.url})`);
      return ctx.redirect("eas451", location);
    }
    oldDevice = pv;
    ctx.rule("R-EAS-7", () => `the device speaks ActiveSync ${pv.text} (${pv.source}), older than 14.0: it cannot follow a cross-site 451, so it is proxied as R-EAS-5`);
  }
  if (!ext) ctx.rule("R-GEN-5", () => `no ActiveSync ExternalUrl in site ${S.info.name}: proxy`);
  ctx.rule("R-EAS-5", () => `proxied to the target CAS's InternalUrl /Proxy in site ${S.info.name}, which must use Integrated Windows authentication`);
  const t = noRetry(ctx, targetInMailboxSite(ctx, "pool", { requireIwa: true, iwaRule: "R-EAS-5" }));
  if (isError(t)) {
    if (oldDevice === undefined || t.status === 503) return t;
    // Neither the 451 (the device cannot follow it) nor a proxy hop is possible: say so plainly.
    return ctx.error(
      t.status,
      "Your device uses an ActiveSync version too old to be sent to your mailbox's site, and it cannot be reached through this address. Update the device or set its server to the address your organisation gave.",
      "R-EAS-7",
      () => `ActiveSync ${oldDevice.text} cannot follow the 451 and the proxy to site ${S.info.name} is impossible`,
    );
  }
  if (!t.server) ctx.rule("R-LB-3", "the target's InternalUrl pool is used round robin; an unanswered request fails (R-EAS-6)");
  return ctx.route(t, "eas-proxy");
}

export interface EasProtocolVersion {
  /** 2.5, 12.0, 12.1, 14.0, 14.1, 16.0, 16.1 ... */
  readonly version: number;
  readonly text: string;
  readonly source: "MS-ASProtocolVersion header" | "base64 query" | "none named (treated as 14.0 or later)";
}

const VERSION_RE = /^\s*(\d{1,2})\.(\d)\s*$/;

/**
 * The ActiveSync protocol version of a request (R-EAS-7): the MS-ASProtocolVersion header
 * [MS-ASHTTP 2.2.1.1.2.4], else the version byte of a base64 query (121 = 12.1) [MS-ASHTTP
 * 2.2.1.1.1.1]; a request that names none is treated as 14.0 or later.
 */
export function easProtocolVersion(req: ClientRequest): EasProtocolVersion {
  const h = req.headers["ms-asprotocolversion"];
  if (h !== undefined) {
    const m = VERSION_RE.exec(h);
    if (m) return { version: Number(m[1]) + Number(m[2]) / 10, text: `${Number(m[1])}.${m[2]}`, source: "MS-ASProtocolVersion header" };
  }
  const q = queryOf(req.path);
  if (q.length > 0) {
    const p = parseEasQuery(q);
    if (p?.form === "base64" && p.protocolVersion !== undefined && p.protocolVersion >= 10) {
      const major = Math.floor(p.protocolVersion / 10);
      const minor = p.protocolVersion % 10;
      return { version: major + minor / 10, text: `${major}.${minor}`, source: "base64 query" };
    }
  }
  return { version: 14, text: "14.0 or later", source: "none named (treated as 14.0 or later)" };
}

/**
 * R-EAS-8: X-MS-Location is the complete ActiveSync URL (https://host/Microsoft-Server-ActiveSync):
 * devices cut the host out of it. A configured ExternalUrl without that path gets it; query and
 * fragment are dropped. Built only from the configured URL.
 */
export function easLocation(configured: string): string {
  let u: URL;
  try {
    u = new URL(configured);
  } catch {
    return configured;
  }
  const path = u.pathname.replace(/\/+$/, "");
  if (path.toLowerCase() !== "/microsoft-server-activesync") u.pathname = "/Microsoft-Server-ActiveSync";
  else u.pathname = path;
  u.search = "";
  u.hash = "";
  return u.toString();
}
