// Exchange Web Services and Availability (R-EWS-1..5, R-LB-4).
import { Ctx, isError } from "../context.js";
import { serviceIndex } from "../topology-index.js";
import { ewsAffinityOperation, isAvailabilityRequest } from "../service.js";
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

  const op = ewsAffinityOperation(ctx.req);
  if (op) {
    if (ctx.cls === "2013+") {
      ctx.rule("R-EWS-4", () => `${op} has strong server affinity: it goes to the one server holding the active copy`);
      const t = targetInMailboxSite(ctx, "server");
      return isError(t) ? t : ctx.route(t);
    }
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
