// Exchange Web Services and Availability (R-EWS-1..6, R-LB-4).
import { Ctx, isError } from "../context.js";
import { serviceIndex } from "../topology-index.js";
import { ewsAffinityOperation, ewsNotificationOperation, isAvailabilityRequest } from "../service.js";
import type { Target } from "../context.js";
import type { SiteIndex } from "../topology-index.js";
import type { Decision } from "../types.js";
import { targetInMailboxSite } from "./common.js";

export function decideEws(ctx: Ctx): Decision {
  const v = ctx.version ?? 2010;
  const S = ctx.mailboxSite ?? ctx.local;
  const crossSite = !ctx.sameSite;
  if (crossSite) ctx.rule("R-EWS-1", "EWS never redirects (Autodiscover hands out the right URL): proxy");

  if (isAvailabilityRequest(ctx.req)) {
    if (v === 2003) {
      const a = ctx.active;
      if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
      ctx.rule("R-EWS-3", () => `Availability for an Exchange 2003 mailbox: free/busy from ${a.name}'s /Public directory`);
      const t = ctx.pickServer(a, { crossSite, requireIwa: crossSite }, "Public", "Public");
      return isError(t) ? t : ctx.route(t, "public-freebusy");
    }
    if (v === 2007) {
      return ctx.error(
        403,
        "Free/busy information for this mailbox is not available here.",
        "R-EWS-3",
        "Availability for an Exchange 2007 mailbox needs an externally reachable 2007 CAS found through Autodiscover",
      );
    }
    ctx.rule("R-EWS-5", () => `Availability is stateless: round robin across site ${S.info.name}, no affinity`);
    ctx.tag("R-LB-4");
    const t = ctx.pick(S, ctx.cls ?? "2010", { mode: "pool", crossSite, requireIwa: crossSite, combined: false });
    if (isError(t)) return t;
    return ctx.route({ site: t.site, cls: t.cls, server: t.server, affinity: "none" });
  }

  if (v < 2007) {
    return ctx.error(404, "Exchange Web Services are not available for your mailbox.", "R-GEN-2", () => `EWS exists from Exchange 2007; the mailbox is on Exchange ${v}`);
  }

  const notification = ewsNotificationOperation(ctx.req);
  if (notification && ctx.cls === "2013+") {
    const named = backEndOverride(ctx, S);
    if (named) return ctx.route(named);
  }
  const op = ewsAffinityOperation(ctx.req);
  if (notification && !op && ctx.cls !== "2013+") {
    ctx.rule("R-EWS-6", () => `${notification} keeps affinity for an Exchange ${v} mailbox: the CAS that took the subscription holds it (pinned)`);
  }
  if (op) {
    if (ctx.cls === "2013+") {
      ctx.rule("R-EWS-4", () => `${op} has strong server affinity: it goes to the one server holding the active copy`);
      const t = targetInMailboxSite(ctx, "server");
      return isError(t) ? t : ctx.route(t);
    }
    ctx.rule("R-EWS-6", () => `${op} keeps affinity for an Exchange ${v} mailbox: the CAS that took the subscription holds it`);
    const withBypass = (s: { internalNLBBypassUrl: string | undefined }) => s.internalNLBBypassUrl !== undefined;
    const members = serviceIndex(S, "Ews").byClass.get(ctx.cls ?? "2010") ?? [];
    if (members.some(withBypass)) {
      const t = ctx.pick(S, ctx.cls ?? "2010", { mode: "sticky", crossSite, requireIwa: crossSite, filter: withBypass });
      if (isError(t)) return t;
      ctx.rule("R-EWS-4", () => `${op} has strong server affinity: proxied to ${t.server?.name}'s internalNLBBypassUrl ${t.server?.internalNLBBypassUrl}, pinning that server`);
      return ctx.route(t);
    }
    ctx.note(() => `R-EWS-4 not applicable: no ${ctx.cls} EWS server of site ${S.info.name} has an internalNLBBypassUrl; ordinary affinity`);
  }

  if (ctx.version !== undefined && ctx.version >= 2010) {
    ctx.rule("R-EWS-2", () => crossSite ? `mailbox in site ${S.info.name}: proxied to its EWS InternalUrl, whether or not it has an ExternalUrl` : "mailbox in the receiving site: served locally");
  } else {
    ctx.note(() => `Exchange 2007 mailbox: EWS goes to a 2007 CAS of site ${S.info.name}`);
  }
  const t = targetInMailboxSite(ctx, "sticky");
  return isError(t) ? t : ctx.route(t);
}

const OVERRIDE_COOKIE = "x-backendoverridecookie";
const MAX_OVERRIDE = 512;

/** The server named by the X-BackEndOverrideCookie cookie ("<server FQDN>~<version>"), as sent. */
export function backEndOverrideServer(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined || cookieHeader.length > 16384) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim().toLowerCase() !== OVERRIDE_COOKIE) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length === 0 || v.length > MAX_OVERRIDE) return undefined;
    try {
      v = decodeURIComponent(v);
    } catch {
      return undefined;
    }
    const name = v.split("~")[0]!.trim();
    // A server name or FQDN only: letters, digits, dots and hyphens.
    return /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(name) ? name : undefined;
  }
  return undefined;
}

/**
 * R-EWS-6 for 2013+ mailboxes: X-PreferServerAffinity: true with the X-BackEndOverrideCookie
 * naming a Mailbox server sends the request there, when that server is known, of the mailbox's
 * site, offers EWS and is usable (R-SEC-1: nothing else a client names is ever a back end).
 */
function backEndOverride(ctx: Ctx, S: SiteIndex): Target | undefined {
  const prefer = (ctx.req.headers["x-preferserveraffinity"] ?? "").trim().toLowerCase() === "true";
  const named = backEndOverrideServer(ctx.req.headers["cookie"]);
  if (!prefer) {
    if (named !== undefined) ctx.note("X-BackEndOverrideCookie without X-PreferServerAffinity: true is not used");
    return undefined;
  }
  if (named === undefined) {
    ctx.note("X-PreferServerAffinity: true without a usable X-BackEndOverrideCookie: the first request of the group, routed as usual");
    return undefined;
  }
  const s = ctx.index.findServer(named);
  let why: string | undefined;
  if (!s) why = "is not a known server";
  else if (s.site !== S.info.name) why = `is in site ${s.site}, not the mailbox's site ${S.info.name}`;
  else if (s.versionClass !== "2013+" || !s.vdirs.has("Ews")) why = "is not an Exchange 2013+ server with EWS";
  else if (!ctx.usable(s, "Ews")) why = ctx.whyUnusable(s, "Ews");
  else if (!ctx.sameSite && !(s.vdirs.get("Ews")?.internalUrl ?? "").toLowerCase().startsWith("https:")) why = "has no https EWS InternalUrl for a cross-site hop (R-GEN-3)";
  if (why !== undefined || !s) {
    ctx.rule("R-SEC-1", () => `the server the client named in X-BackEndOverrideCookie ${why}: not used as a back end`);
    return undefined;
  }
  ctx.rule("R-EWS-6", () => `X-PreferServerAffinity with X-BackEndOverrideCookie naming ${s.name}, a known, usable server of site ${S.info.name}: the subscription group stays there`);
  return { site: s.site, cls: s.versionClass, server: s, affinity: ctx.pinned() ? "clear" : "none" };
}
