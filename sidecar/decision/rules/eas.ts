// Exchange ActiveSync (R-EAS-1..6, R-LB-3).
import { Ctx, isError, type Picked } from "../context.js";
import type { Decision } from "../types.js";
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
  if (ext && S.info.internetFacing) {
    ctx.rule("R-GEN-5", () => `site ${S.info.name}'s ActiveSync directory has an ExternalUrl and ActiveSync can be redirected`);
    ctx.rule("R-EAS-4", () => `mailbox in site ${S.info.name}: HTTP 451 with X-MS-Location ${ext.url}; the device reconfigures itself`);
    return ctx.redirect("eas451", ext.url);
  }
  if (!ext) ctx.rule("R-GEN-5", () => `no ActiveSync ExternalUrl in site ${S.info.name}: proxy`);
  ctx.rule("R-EAS-5", () => `proxied to the target CAS's InternalUrl /Proxy in site ${S.info.name}, which must use Integrated Windows authentication`);
  const t = noRetry(ctx, targetInMailboxSite(ctx, "pool", { requireIwa: true, iwaRule: "R-EAS-5" }));
  if (isError(t)) return t;
  if (!t.server) ctx.rule("R-LB-3", "the target's InternalUrl pool is used round robin; an unanswered request fails (R-EAS-6)");
  return ctx.route(t, "eas-proxy");
}
