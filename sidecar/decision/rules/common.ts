// Target selection shared by the HTTP rule modules: the mailbox's version class decides how.
import type { Service } from "../../../crds/index.js";
import type { Ctx, Picked, PickOptions } from "../context.js";
import type { SiteIndex } from "../topology-index.js";
import type { RuleId } from "../types.js";

/** A target in the mailbox site for the mailbox's class: 2013+ → active copy (R-2013-2), else `mode`. */
export function targetInMailboxSite(
  ctx: Ctx,
  mode: PickOptions["mode"],
  opts: { requireIwa?: boolean; iwaRule?: RuleId; svc?: Service; site?: SiteIndex } = {},
): Picked {
  const site = opts.site ?? ctx.mailboxSite ?? ctx.local;
  const crossSite = site.info.name !== ctx.local.info.name;
  const requireIwa = opts.requireIwa ?? crossSite;
  if (ctx.cls === "2013+") return ctx.pick2013(site, { crossSite, requireIwa, iwaRule: opts.iwaRule }, opts.svc);
  return ctx.pick(site, ctx.cls ?? "2010", { mode, crossSite, requireIwa, iwaRule: opts.iwaRule }, opts.svc);
}

/** Whether the request carries a password the single sign-on form can pass on (R-OWA-3). */
export function carriesPassword(ctx: Ctx): boolean {
  const src = ctx.identity?.source;
  return src === "basic" || src === "owa-fba-username";
}
