// Offline Address Book (R-OAB-1), Autodiscover (R-AUTOD-1), Outlook MAPI/RPC over HTTP (R-OUT-1),
// remote PowerShell.
import type { VersionClass } from "../../../model/topology/types.js";
import { Ctx, isError } from "../context.js";
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
  const S = ctx.mailboxSite ?? ctx.local;
  const src = ctx.identity?.source;
  if (src === "mapi-mailboxid" || src === "rpc-mailboxid") {
    ctx.rule("R-OUT-1", () => `the connection point <mailbox GUID>@<domain> names the mailbox: routed to site ${S.info.name}`);
  } else {
    ctx.note(() => `no <mailbox GUID>@<domain> connection point; routed by ${src}`);
  }
  if (v === 2003) {
    const a = ctx.active;
    if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
    const t = ctx.pickServer(a, { crossSite: !ctx.sameSite, requireIwa: !ctx.sameSite });
    return isError(t) ? t : ctx.route(t);
  }
  const t = targetInMailboxSite(ctx, "pool");
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
