// R-HYB-1: a mailbox that moved to Exchange Online (a remote mailbox: its target address is in the
// tenant's routing domain) is never routed to an on-premises server. Where it goes comes from the
// organisation relationship with Exchange Online (OrganizationRelationship).
import type { OrganizationRelationshipInfo } from "../../../model/topology/types.js";
import { relationshipForAddress } from "../../../model/topology/organization-relationship.js";
import type { Ctx } from "../context.js";
import type { Decision } from "../types.js";
import { easLocation } from "./eas.js";

/** The enabled relationship whose domains hold the target address's domain (or a parent of it). */
export function relationshipFor(ctx: Ctx, targetAddress: string): OrganizationRelationshipInfo | undefined {
  return relationshipForAddress(ctx.topology, targetAddress);
}

function urlOf(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

export function decideRemoteMailbox(ctx: Ctx, remote: { targetAddress: string; recipientTypeDetails: string }): Decision {
  const svc = ctx.service;
  const target = remote.targetAddress;
  const rel = relationshipFor(ctx, target);
  if (!rel) {
    return ctx.error(502, "Your mailbox has moved to Exchange Online, and this address is not set up to send you there. Contact your administrator.", "R-HYB-1",
      () => `${remote.recipientTypeDetails} with target address ${target}: no enabled OrganizationRelationship has its domain`);
  }
  // Exchange Online serves EWS, MAPI, Outlook Anywhere, OAB, POP3 and IMAP4 on the host of its
  // ActiveSync URL (outlook.office365.com): that host is the endpoint the errors name.
  const easUrl = urlOf(rel.targetActiveSyncUrl);
  const cloudHost = easUrl?.hostname ?? rel.targetActiveSyncUrl;
  const cloud = easUrl?.origin ?? rel.targetActiveSyncUrl;
  ctx.note(() => `${remote.recipientTypeDetails}: target address ${target} is in domain of OrganizationRelationship ${rel.name}: the mailbox is in Exchange Online`);
  switch (svc) {
    case "Owa":
    case "Ecp": {
      const rx = ctx.receivingDir("Owa");
      const type = rx?.crossSiteRedirectType ?? "Manual";
      ctx.rule("R-HYB-1", () => `OWA for a mailbox in Exchange Online: redirected (${type}, as R-OWA-2) to the cloud OWA ${rel.targetOwaUrl}`);
      return ctx.redirect(type === "Silent" ? "silent" : "manual", rel.targetOwaUrl);
    }
    case "ActiveSync": {
      const url = easLocation(rel.targetActiveSyncUrl);
      ctx.rule("R-HYB-1", () => `ActiveSync for a mailbox in Exchange Online: 451 with X-MS-Location ${url}`);
      ctx.tag("R-EAS-8");
      return ctx.redirect("eas451", url);
    }
    case "Autodiscover": {
      // The POX Autodiscover (Outlook, ActiveSync devices) has an answer for exactly this: Action
      // redirectAddr with the target address, which the client then looks up in the cloud.
      if (/^\/autodiscover\/autodiscover\.xml$/i.test(ctx.req.path.split("?")[0])) {
        ctx.rule("R-HYB-1", () => `Autodiscover for a mailbox in Exchange Online: answered with redirectAddr to the target address ${target}`);
        return ctx.redirect("autodiscoverAddr", target);
      }
      const epr = rel.targetAutodiscoverEpr;
      if (epr) {
        ctx.rule("R-HYB-1", () => `Autodiscover for a mailbox in Exchange Online: redirected to the cloud Autodiscover ${epr}, for the target address ${target}`);
        return ctx.redirect("silent", epr);
      }
      return ctx.error(421, `Your mailbox has moved to Exchange Online: look it up as ${target}.`, "R-HYB-1",
        () => `Autodiscover for a mailbox in Exchange Online: the relationship ${rel.name} names no targetAutodiscoverEpr; the answer names the target address ${target}`);
    }
    case "Pop3":
    case "Imap4": {
      const d = ctx.error(421, `Your mailbox has moved to Exchange Online: connect to ${cloudHost}.`, "R-HYB-1",
        () => `${svc} login for a mailbox in Exchange Online is never proxied on premises: refused naming the cloud server ${cloudHost}`);
      return { ...d, cloudHost };
    }
    default: {
      const d = ctx.error(421, `Your mailbox has moved to Exchange Online: connect to ${cloud}.`, "R-HYB-1",
        () => `${svc} for a mailbox in Exchange Online is never served on premises: refused naming the cloud endpoint ${cloud}`);
      return { ...d, cloudHost };
    }
  }
}
