import { z } from "zod";
import { API_VERSION, ObjectMeta, Status, hostname, httpUrl } from "./common.js";

// R-HYB-1: the organisation's Exchange Online endpoints, where an Exchange administrator finds them:
// the organization relationship with the tenant (Get-OrganizationRelationship: DomainNames,
// TargetOwaURL, TargetAutodiscoverEpr) and the ActiveSync URL devices are sent to for a mailbox
// that moved (outlook.office365.com).
export const OrganizationRelationshipSpec = z
  .object({
    domainNames: z
      .array(hostname.describe("A domain of the cloud organisation, e.g. contoso.mail.onmicrosoft.com."))
      .min(1)
      .max(64)
      .describe(
        "The Exchange Online organisation's domains (DomainNames), the tenant's routing domain among them. A remote mailbox whose target address is in one of them has moved there (R-HYB-1).",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    targetOwaUrl: httpUrl.describe("Outlook on the web in the cloud (TargetOwaURL), e.g. https://outlook.office.com/mail: where OWA users of a moved mailbox are sent."),
    targetActiveSyncUrl: httpUrl.describe(
      "The cloud's ActiveSync URL, e.g. https://outlook.office365.com/Microsoft-Server-ActiveSync: the X-MS-Location of the 451 a device of a moved mailbox gets.",
    ),
    targetAutodiscoverEpr: httpUrl
      .optional()
      .describe("The cloud's Autodiscover endpoint (TargetAutodiscoverEpr): where SOAP Autodiscover for a moved mailbox is redirected. POX Autodiscover answers redirectAddr with the mailbox's target address instead."),
    enabled: z.boolean().default(true).describe("Whether the relationship is in force (Enabled). A disabled one routes nothing."),
  })
  .describe("The organisation relationship with Exchange Online (hybrid): its domains and cloud endpoints (R-HYB-1).");

export const OrganizationRelationship = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("OrganizationRelationship"),
  metadata: ObjectMeta,
  spec: OrganizationRelationshipSpec,
  status: Status.optional(),
});
export type OrganizationRelationship = z.infer<typeof OrganizationRelationship>;
