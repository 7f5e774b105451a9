// Outlook Web App (R-OWA-1..11) and the Exchange Control Panel (R-ECP-1..2), which shares OWA's logic.
import type { VirtualDirectoryInfo } from "../../../model/topology/types.js";
import { Ctx, isError, sameMethods, usesFba } from "../context.js";
import { serviceIndex } from "../topology-index.js";
import type { Decision, RedirectKind } from "../types.js";
import { carriesPassword, targetInMailboxSite } from "./common.js";

/** ECP was navigated to directly (R-ECP-2): no Referer, or a Referer outside /owa and /ecp. */
export function ecpNavigatedDirectly(referer: string | undefined): boolean {
  if (!referer) return true;
  let path: string;
  try {
    path = new URL(referer, "https://referer.invalid").pathname.toLowerCase();
  } catch {
    return true;
  }
  return !(path === "/owa" || path.startsWith("/owa/") || path === "/ecp" || path.startsWith("/ecp/"));
}

export function decideOwa(ctx: Ctx): Decision {
  const svc = ctx.service; // Owa or Ecp
  const isEcp = svc === "Ecp";
  const v = ctx.version ?? 2010;
  const S = ctx.mailboxSite ?? ctx.local;
  const L = ctx.local;

  if (isEcp && v < 2010) {
    return ctx.error(
      404,
      "The Exchange Control Panel is not available for your mailbox.",
      "R-GEN-2",
      () => `ECP exists from Exchange 2010; the mailbox is on Exchange ${v}`,
    );
  }

  // R-OWA-6: Exchange 2003 mailbox.
  if (v === 2003) {
    // Only Exchange 2010 CAS carry exchange2003Url (2013+ cannot front 2003): take the receiving
    // site's first OWA directory, newest first, that sets it.
    const rx = serviceIndex(L, "Owa").ordered.map((s) => s.vdirs.get("Owa")).find((d) => d?.exchange2003Url) ?? ctx.receivingDir();
    if (rx?.exchange2003Url) {
      const url = rx.exchange2003Url;
      ctx.rule("R-OWA-6", () => `Exchange 2003 mailbox: the receiving OWA directory (${rx.name}) sets exchange2003Url ${url}`);
      return legacyRedirect(ctx, rx, url, "2003");
    }
    return ctx.error(
      403,
      "Your mailbox is on an older Exchange server that this address cannot open. Contact your administrator.",
      "R-OWA-6",
      () => `Exchange 2003 mailbox and the receiving OWA directory of site ${L.info.name} has no exchange2003Url`,
    );
  }

  if (ctx.sameSite) {
    if (v === 2007 && !isEcp) return owa2007SameSite(ctx);
    ctx.rule(isEcp ? "R-ECP-1" : "R-OWA-1", () => `Exchange ${v} mailbox in the receiving site ${L.info.name}: served locally`);
    const t = targetInMailboxSite(ctx, "sticky");
    return isError(t) ? t : ctx.route(t);
  }

  // Another site.
  const direct = isEcp ? ecpNavigatedDirectly(ctx.req.headers["referer"]) : true;
  if (isEcp) {
    if (direct) {
      ctx.rule("R-ECP-2", () => `ECP was navigated to directly (${ctx.req.headers["referer"] ? "Referer outside /owa and /ecp" : "no Referer"}): follows R-OWA-2`);
    } else {
      ctx.rule("R-ECP-1", () => `ECP opened from OWA or Outlook for a mailbox in site ${S.info.name}: proxied there`);
      const t = targetInMailboxSite(ctx, "sticky", { requireIwa: true, iwaRule: "R-OWA-5" });
      if (!isError(t)) return ctx.route(t);
      // Proxying is impossible (no IWA on the target); a configured ExternalUrl still gets the user there.
      const ext = S.info.internetFacing ? ctx.externalUrlIn(S, ctx.cls ?? "2010") : undefined;
      if (t.status !== 403 || !ext) return t;
      return retryAsRedirect(ctx, ext.url, ext.dir.externalAuthenticationMethods);
    }
  }

  const ruleCross = v === 2007 && !isEcp ? "R-OWA-8" : "R-OWA-2";
  const rxOwa = ctx.receivingDir("Owa");
  if (rxOwa && !rxOwa.redirectToOptimalOwaServer) {
    // R-OWA-11: this front door never redirects a cross-site user; proxy (R-OWA-4) or refuse (R-OWA-5).
    ctx.rule("R-OWA-11", () => `the receiving OWA directory ${rxOwa.name} sets redirectToOptimalOwaServer false: no redirect to site ${S.info.name}, proxy or refuse`);
    const t = targetInMailboxSite(ctx, "sticky", { requireIwa: true, iwaRule: "R-OWA-5" });
    if (isError(t)) return t;
    ctx.rule(v === 2007 && !isEcp ? "R-OWA-8" : "R-OWA-4", () => `proxied to the ${svc} InternalUrl in site ${S.info.name}, which accepts Integrated Windows authentication`);
    return ctx.route(t);
  }
  const ext = ctx.externalUrlIn(S, ctx.cls ?? "2010");
  if (ext && !S.info.internetFacing) {
    ctx.rule("R-GEN-4", () => `site ${S.info.name} is not internet facing: reached only by proxy, never by redirect`);
  }
  if (ext && S.info.internetFacing) {
    ctx.rule("R-GEN-5", () => `site ${S.info.name}'s ${svc} directory has an ExternalUrl and ${svc} can be redirected`);
    return crossSiteRedirect(ctx, ruleCross, ext.url, ext.dir.externalAuthenticationMethods);
  }
  // R-OWA-4 / R-OWA-8: no ExternalUrl → proxy to the InternalUrl if the target uses IWA; else R-OWA-5.
  if (!ext) ctx.rule("R-GEN-5", () => `no ${svc} ExternalUrl in site ${S.info.name}: proxy`);
  const t = targetInMailboxSite(ctx, "sticky", { requireIwa: true, iwaRule: "R-OWA-5" });
  if (isError(t)) return t;
  ctx.rule(v === 2007 && !isEcp ? "R-OWA-8" : "R-OWA-4", () => `proxied to the ${svc} InternalUrl in site ${S.info.name}, which accepts Integrated Windows authentication`);
  return ctx.route(t);
}

function retryAsRedirect(ctx: Ctx, url: string, targetAuth: Parameters<typeof usesFba>[0]): Decision {
  const S = ctx.mailboxSite ?? ctx.local;
  ctx.note(() => `proxying is impossible, and site ${S.info.name} has an ECP ExternalUrl: redirect instead (docs/decisions.md)`);
  return crossSiteRedirect(ctx, "R-OWA-2", url, targetAuth);
}

/** R-OWA-2 / R-OWA-3: Manual page or Silent redirect per the receiving directory; Silent + FBA both ends → SSO. */
function crossSiteRedirect(ctx: Ctx, rule: "R-OWA-2" | "R-OWA-8", url: string, targetAuth: Parameters<typeof usesFba>[0]): Decision {
  const rx = ctx.receivingDir();
  const type = rx?.crossSiteRedirectType ?? "Manual";
  const S = ctx.mailboxSite ?? ctx.local;
  if (rule === "R-OWA-8") ctx.rule("R-OWA-8", `Exchange 2007 mailbox in another site with an OWA ExternalUrl: redirect as R-OWA-2`);
  ctx.rule("R-OWA-2", () => `mailbox in site ${S.info.name}, whose ${ctx.service} ExternalUrl is ${url}; receiving directory ${rx?.name ?? "(none)"} crossSiteRedirectType ${type}`);
  if (type === "Manual") return ctx.redirect("manual", url);
  let kind: RedirectKind = "silent";
  const rxFba = rx !== undefined && (usesFba(rx.externalAuthenticationMethods) || usesFba(rx.internalAuthenticationMethods));
  if (rxFba && usesFba(targetAuth) && url.toLowerCase().startsWith("https:") && ctx.req.scheme === "https") {
    if (carriesPassword(ctx)) {
      kind = "sso";
      ctx.rule("R-OWA-3", "silent redirect with forms-based authentication at both ends over HTTPS: single sign-on form");
    } else {
      ctx.note("R-OWA-3 not applied: the request carries no password to hand on (plain silent redirect)");
    }
  }
  return ctx.redirect(kind, url);
}

type Dir = VirtualDirectoryInfo;
type Methods = Dir["internalAuthenticationMethods"];
/** R-OWA-7's order: (a) ExternalUrl with matching authentication, (b) any ExternalUrl, (c) InternalUrl with matching authentication, (d) any InternalUrl. */
const R_OWA_7_STEPS: readonly { tag: "a" | "b" | "c" | "d"; match: boolean; url: (d: Dir, rxAuth: Methods) => string | null | undefined }[] = [
  { tag: "a", match: true, url: (d, rx) => (sameMethods(d.externalAuthenticationMethods, rx) ? d.externalUrl : undefined) },
  { tag: "b", match: false, url: (d) => d.externalUrl },
  { tag: "c", match: true, url: (d, rx) => (sameMethods(d.internalAuthenticationMethods, rx) ? d.internalUrl : undefined) },
  { tag: "d", match: false, url: (d) => d.internalUrl },
];

/** R-OWA-7: Exchange 2007 mailbox in the receiving site: redirect to a 2007 CAS, (a) to (d). */
function owa2007SameSite(ctx: Ctx): Decision {
  const L = ctx.local;
  const si = serviceIndex(L, "Owa");
  if (si.classes[0] === "2007") {
    // The receiving front door is itself a 2007 CAS: it serves the mailbox.
    ctx.rule("R-OWA-7", "the receiving OWA directory is on an Exchange 2007 CAS, which serves a 2007 mailbox itself");
    const t = ctx.pick(L, "2007", { mode: "sticky", crossSite: false, requireIwa: false });
    return isError(t) ? t : ctx.route(t);
  }
  const cas2007 = si.byClass.get("2007") ?? [];
  if (cas2007.length === 0) {
    return ctx.error(
      502,
      "No server is set up to open your mailbox with this application. Contact your administrator.",
      "R-GEN-2",
      () => `Exchange 2007 mailbox in site ${L.info.name}, which has no Exchange 2007 CAS with an OWA directory`,
    );
  }
  const usable = cas2007.filter((s) => ctx.usable(s));
  if (usable.length === 0) {
    return ctx.error(503, "The server that holds your mailbox is not available right now. Try again in a few minutes.", "R-OWA-7",
      `every Exchange 2007 CAS of site ${L.info.name} is unusable (${cas2007.map((s) => `${s.name} ${ctx.whyUnusable(s)}`).join(", ")})`);
  }
  const rx = ctx.receivingDir();
  const rxAuth = rx?.internalAuthenticationMethods ?? [];
  const pw = carriesPassword(ctx);
  for (const step of R_OWA_7_STEPS) {
    for (const s of usable) {
      const d = s.vdirs.get("Owa");
      if (!d) continue;
      const url = step.url(d, rxAuth);
      if (!url) continue;
      const auth = step.tag === "a" || step.tag === "b" ? d.externalAuthenticationMethods : d.internalAuthenticationMethods;
      const sso = step.match && usesFba(auth) && usesFba(rxAuth) && pw;
      ctx.rule(
        "R-OWA-7",
        () => `Exchange 2007 mailbox in the receiving site: step (${step.tag}) ${s.name} ${step.tag === "a" || step.tag === "b" ? "ExternalUrl" : "InternalUrl"}` +
          (step.match ? ` whose authentication equals the receiving directory's (${rxAuth.join(", ")})` : " (the user signs in again)") +
          (sso ? "; both FBA: single sign-on" : ""),
      );
      if (sso) return ctx.redirect("sso", url);
      return legacyRedirect(ctx, rx, url, "2007");
    }
  }
  return ctx.error(502, "No server is set up to open your mailbox with this application. Contact your administrator.", "R-OWA-7",
    "no Exchange 2007 CAS OWA directory has an ExternalUrl or InternalUrl");
}

/**
 * A redirect to a legacy OWA: a 2007 CAS (R-OWA-7) or an Exchange 2003 front end (R-OWA-6).
 * R-OWA-9: to a 2003 front end, a receiving directory that uses FBA and a request that carries
 * credentials make it a single sign-on form posted to the front end's owaauth.dll.
 * R-OWA-10: otherwise a receiving directory without FBA follows its legacyRedirectType
 * (Silent: 302; Manual: a page with the legacy URL); with FBA it is a 302.
 */
function legacyRedirect(ctx: Ctx, rx: VirtualDirectoryInfo | undefined, url: string, to: "2003" | "2007"): Decision {
  const rxFba = rx !== undefined && (usesFba(rx.internalAuthenticationMethods) || usesFba(rx.externalAuthenticationMethods));
  if (to === "2003") {
    const post = owaauthUrl(url);
    if (rxFba && post && carriesPassword(ctx) && ctx.req.scheme === "https") {
      ctx.rule("R-OWA-9", () => `the receiving OWA directory uses forms-based authentication and the request carries credentials: single sign-on form posted to ${post} with destination ${url}`);
      const d = ctx.redirect("sso", url);
      return { ...d, ssoPostUrl: post };
    }
    ctx.rule("R-OWA-9", () => rxFba
      ? (post ? "no credentials in the request to hand on (or not HTTPS): plain redirect to the Exchange 2003 front end" : `exchange2003Url ${url} is not https: plain redirect, credentials are never posted in clear`)
      : "the receiving OWA directory does not use forms-based authentication: no single sign-on form");
  }
  if (rxFba) return ctx.redirect("silent", url);
  const type = rx?.legacyRedirectType ?? "Silent";
  ctx.rule("R-OWA-10", () => `the receiving OWA directory ${rx?.name ?? "(none)"} does not use forms-based authentication; legacyRedirectType ${type}: ${type === "Silent" ? "302" : "a page that shows the legacy URL"}`);
  return ctx.redirect(type === "Silent" ? "silent" : "manual", url);
}

/** The Exchange 2003 front end's forms-based logon (R-OWA-9), from exchange2003Url's origin; https only. */
export function owaauthUrl(exchange2003Url: string): string | undefined {
  try {
    const u = new URL(exchange2003Url);
    return u.protocol === "https:" ? `${u.origin}/exchweb/bin/auth/owaauth.dll` : undefined;
  } catch {
    return undefined;
  }
}
