// POP3 and IMAP4 (R-POP-1..5): the mail proxy connects to the chosen server's internalConnectionSettings.
import { Ctx, isError, type Picked } from "../context.js";
import { serviceIndex } from "../topology-index.js";
import type { Decision } from "../types.js";

export function decideMail(ctx: Ctx): Decision {
  const svc = ctx.service; // Pop3 | Imap4
  const v = ctx.version ?? 2010;
  const S = ctx.mailboxSite ?? ctx.local;
  const crossSite = !ctx.sameSite;
  const mech = (ctx.req.mail?.mechanism ?? "").toUpperCase();

  if (svc === "Imap4" && crossSite && mech === "NTLM") {
    return ctx.error(
      403,
      "Sign in with a user name and password (not Windows authentication) to reach your mailbox.",
      "R-POP-4",
      () => `IMAP4 with NTLM authentication to a mailbox in another site (${S.info.name}) fails in Exchange`,
    );
  }
  if (crossSite) ctx.note(() => `R-GEN-7 does not stop ${svc}: its Basic credentials are proxied over TLS`);
  let t: Picked;
  if (v === 2003) {
    const a = ctx.active;
    if (!a) return ctx.error(502, "Your mailbox could not be located. Contact your administrator.");
    ctx.rule("R-POP-1", () => `Exchange 2003 mailbox: proxied to the ${svc} service of ${a.name} itself`);
    t = ctx.pickServer(a, { crossSite, requireIwa: false });
  } else if (v === 2007) {
    ctx.rule("R-POP-2", () => `Exchange 2007 mailbox: proxied to a 2007 CAS of site ${S.info.name}`);
    t = ctx.pick(S, "2007", { mode: "server", crossSite, requireIwa: false });
  } else {
    ctx.rule("R-POP-3", () => crossSite ? `mailbox in site ${S.info.name}: proxied to the FQDN in the target CAS's internalConnectionSettings` : "mailbox in the receiving site: served locally");
    const a = ctx.active;
    if (ctx.cls === "2013+" && a && a.vdirs.has(svc) && ctx.usable(a)) {
      t = ctx.pickServer(a, { crossSite, requireIwa: false });
      if (!isError(t)) ctx.rule("R-2013-2", () => `routed to ${a.name}, the server holding the active copy of the database`);
    } else {
      t = ctx.pick(S, ctx.cls ?? "2010", { mode: "server", crossSite, requireIwa: false });
    }
  }
  const members = serviceIndex(S, svc).byClass.get(ctx.cls ?? "2010") ?? [];
  const down = members.filter((s) => !ctx.usable(s)).map((s) => s.name);
  ctx.rule("R-POP-5", () => down.length ? `${svc} is health-checked; not used: ${down.join(", ")}` : `${svc} is health-checked; only servers where it answers are used`);
  return isError(t) ? t : ctx.route(t);
}
