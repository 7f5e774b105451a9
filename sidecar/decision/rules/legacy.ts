// Exchange 2003's paths at a newer front door: /exchange and /exchweb (OWA 2003 and its logon and
// resources; R-OWA-6, R-OWA-9) and /public (public folders and free/busy; R-EWS-3). Envoy routes them
// to the sidecar; an old bookmark or an old client must get a decided answer, never a bare 404.
import { Ctx, isError } from "../context.js";
import { serviceIndex } from "../topology-index.js";
import type { LegacyPath } from "../service.js";
import type { Decision } from "../types.js";
import { decideOwa } from "./owa.js";

/** Where the receiving site's OWA is (ExternalUrl first): the configured URL a legacy path sends a user to. */
function receivingOwaUrl(ctx: Ctx): string | undefined {
  const d = ctx.receivingDir("Owa");
  return d?.externalUrl ?? d?.internalUrl ?? undefined;
}

/** Redirect a legacy path to the receiving site's OWA, or refuse when the site has none. */
function toReceivingOwa(ctx: Ctx, rule: "R-OWA-6" | "R-EWS-3", why: string): Decision {
  const url = receivingOwaUrl(ctx);
  if (!url) {
    return ctx.error(404, "There is no Exchange application at this address.", rule, () => `${why}; site ${ctx.local.info.name} has no OWA directory to send the user to`);
  }
  ctx.rule(rule, () => `${why}: redirected to the receiving site's OWA ${url}`);
  return ctx.redirect("silent", url);
}

/**
 * A legacy path for a known mailbox. /exchange and /exchweb: an Exchange 2003 mailbox follows
 * R-OWA-6 (exchange2003Url, with R-OWA-9's single sign-on) exactly as /owa does; a newer mailbox's
 * OWA is /owa, where the user is sent. /public: Exchange 2003 public folders on the mailbox's own
 * 2003 server (R-EWS-3), a 2007 CAS's /public for a 2007 mailbox; from 2010 /public is gone and
 * public folders open in OWA.
 */
export function decideLegacyPath(ctx: Ctx, path: LegacyPath): Decision {
  const v = ctx.version ?? 2010;
  if (path === "exchange" || path === "exchweb") {
    if (v === 2003) {
      ctx.rule("R-OWA-6", () => `/${path} is Exchange 2003's OWA path and the mailbox is on Exchange 2003: decided as OWA for a 2003 mailbox`);
      return decideOwa(ctx);
    }
    return toReceivingOwa(ctx, "R-OWA-6", `/${path} is Exchange 2003's OWA path; the mailbox is on Exchange ${v}, whose OWA is /owa`);
  }
  const S = ctx.mailboxSite ?? ctx.local;
  const crossSite = !ctx.sameSite;
  if (v === 2003) {
    const a = ctx.active;
    if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
    ctx.rule("R-EWS-3", () => `/public for an Exchange 2003 mailbox: its public folders and free/busy are on ${a.name}'s /Public directory`);
    const t = ctx.pickServer(a, { crossSite, requireIwa: crossSite }, "Public");
    return isError(t) ? t : ctx.route(t);
  }
  if (v === 2007) {
    if ((serviceIndex(S, "Public").byClass.get("2007") ?? []).length === 0) {
      return toReceivingOwa(ctx, "R-EWS-3", `/public for an Exchange 2007 mailbox, and site ${S.info.name} has no Exchange 2007 server with a /Public directory`);
    }
    ctx.rule("R-EWS-3", () => `/public for an Exchange 2007 mailbox: an Exchange 2007 CAS of site ${S.info.name} serves its /Public directory`);
    const t = ctx.pick(S, "2007", { mode: "pool", crossSite, requireIwa: crossSite, combined: false });
    return isError(t) ? t : ctx.route(t);
  }
  return toReceivingOwa(ctx, "R-EWS-3", `/public is the public-folder directory of Exchange 2003 and 2007; the mailbox is on Exchange ${v}, whose public folders open in OWA`);
}

/**
 * A legacy path without a known mailbox (no identity yet, or none the directory knows). /exchange and
 * /exchweb: the receiving site's OWA signs the user in, and routes a 2003 mailbox by R-OWA-6 from
 * there. /public: the receiving site's own /Public servers challenge, when it has any; otherwise OWA.
 */
export function decideLegacyPathWithoutMailbox(ctx: Ctx, path: LegacyPath): Decision | undefined {
  const who = ctx.identity ? "no mailbox for the identity" : "no identity in the request";
  if (path === "exchange" || path === "exchweb") {
    return toReceivingOwa(ctx, "R-OWA-6", `/${path} is Exchange 2003's OWA path and ${who}; OWA signs the user in and routes an Exchange 2003 mailbox by R-OWA-6`);
  }
  if (serviceIndex(ctx.local, "Public").classes.length > 0) {
    ctx.rule("R-EWS-3", () => `/public is the Exchange 2003/2007 public-folder directory and ${who}: the receiving site's /Public servers challenge`);
    return undefined;
  }
  return toReceivingOwa(ctx, "R-EWS-3", `/public is the Exchange 2003/2007 public-folder directory, site ${ctx.local.info.name} has none, and ${who}`);
}
