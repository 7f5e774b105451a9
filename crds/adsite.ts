import { z } from "zod";
import { API_VERSION, ObjectMeta, Status, hostname } from "./common.js";

export const ADSiteSpec = z
  .object({
    hostnames: z
      .array(hostname.describe("A front-door host name, e.g. usa.contoso.com."))
      .max(64)
      .default([])
      .describe(
        "Front-door host names (Host header or TLS SNI) that belong to this Active Directory site. A request arriving for one of them is received by this site.",
      ),
    internetFacing: z
      .boolean()
      .optional()
      .describe(
        "Whether clients reach this site from the Internet. When absent it is derived: a site is internet facing when any of its virtual directories has an ExternalUrl.",
      ),
    description: z.string().max(1024).optional().describe("Free text for administrators."),
  })
  .describe("An Active Directory site: a group of Exchange servers that share a front door.");

export const ADSite = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("ADSite"),
  metadata: ObjectMeta,
  spec: ADSiteSpec,
  status: Status.optional(),
});
export type ADSite = z.infer<typeof ADSite>;
