import { z } from "zod";
import {
  API_VERSION,
  ExchangeVersion,
  ObjectMeta,
  ServerRole,
  Status,
  hostname,
  httpUrl,
  k8sName,
  withCrossFieldRules,
} from "./common.js";

export const ClientAccessServerSpec = withCrossFieldRules(
  z
  .object({
    site: k8sName.describe("Name of the ADSite this server belongs to."),
    fqdn: hostname.describe("The server's fully qualified domain name, e.g. cas01.usa.contoso.com."),
    exchangeVersion: ExchangeVersion.describe("Exchange version the server runs."),
    roles: z
      .array(ServerRole.describe("An Exchange server role: ClientAccess or Mailbox."))
      .min(1)
      .max(2)
      .describe("Roles installed: ClientAccess, Mailbox, or both on a combined server.")
      .meta({ "x-kubernetes-list-type": "set" }),
    address: z
      .string()
      .regex(/^[^\s/]+$/, "must be a host or host:port without scheme or path")
      .optional()
      .describe(
        "Network address the gateway connects to (host or host:port). Defaults to the FQDN; the port defaults to the one in the virtual directory URL.",
      ),
    internalNLBBypassUrl: httpUrl
      .optional()
      .describe("EWS URL of this one server, bypassing the load balancer (used for GetEvents/Unsubscribe, R-EWS-4)."),
    maintenance: z
      .boolean()
      .default(false)
      .describe("Drained: the server takes no new sessions; existing affinity pins move to another server."),
    tls: z
      .object({
        insecureSkipVerify: z
          .boolean()
          .default(false)
          .describe(
            "Do not validate this server's certificate (name, expiry, trust), as Exchange CAS-to-CAS proxying does (R-GEN-3). Reported as a warning condition.",
          ),
        caBundle: z
          .string()
          .max(65536)
          .regex(/-----BEGIN CERTIFICATE-----/, "must hold PEM certificates (-----BEGIN CERTIFICATE-----)")
          .optional()
          .describe(
            "PEM CA certificates that validate this server's certificate (an internal CA), instead of the gateway's bundle (the chart's upstreamTls.caBundle, else the system CAs). Used by Envoy and by the operator's health checks.",
          ),
      })
      .default({ insecureSkipVerify: false })
      .describe("Upstream TLS settings for connections to this server."),
  })
  .describe("An Exchange server with the Client Access and/or Mailbox role."),
  [
    {
      rule: "!has(self.internalNLBBypassUrl) || self.exchangeVersion != '2003'",
      message: "internalNLBBypassUrl is not available on Exchange 2003",
      field: "internalNLBBypassUrl",
      check: (s) => s.internalNLBBypassUrl === undefined || s.exchangeVersion !== "2003",
    },
    {
      rule: "self.roles.all(r, self.roles.exists_one(x, x == r))",
      message: "roles must not repeat",
      field: "roles",
      check: (s) => new Set(s.roles).size === s.roles.length,
    },
  ],
);

export const ClientAccessServer = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("ClientAccessServer"),
  metadata: ObjectMeta,
  spec: ClientAccessServerSpec,
  status: Status.optional(),
});
export type ClientAccessServer = z.infer<typeof ClientAccessServer>;
