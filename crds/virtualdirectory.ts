import { z } from "zod";
import {
  API_VERSION,
  AuthMethod,
  ObjectMeta,
  Service,
  Status,
  hostname,
  httpUrl,
  k8sName,
  withCrossFieldRules,
} from "./common.js";

export const ConnectionSetting = z
  .object({
    hostname: hostname.describe("Host name clients or proxies connect to."),
    port: z.number().int().min(1).max(65535).describe("TCP port."),
    encryption: z
      .enum(["None", "Ssl", "Tls"])
      .default("None")
      .describe("None: plain; Ssl: implicit TLS on connect; Tls: STARTTLS/STLS after the greeting."),
  })
  .describe("One POP3/IMAP4 endpoint, as Exchange's InternalConnectionSettings/ExternalConnectionSettings.");
export type ConnectionSetting = z.infer<typeof ConnectionSetting>;

const authList = (what: string) =>
  z
    .array(AuthMethod.describe("An authentication method, as Exchange names it (Fba = forms-based)."))
    .max(9)
    .default([])
    .describe(`Authentication methods the virtual directory accepts on its ${what}.`)
    .meta({ "x-kubernetes-list-type": "set" });

const isMail = (s: { service: string }) => s.service === "Pop3" || s.service === "Imap4";

export const VirtualDirectorySpec = withCrossFieldRules(
  z
  .object({
    server: k8sName.describe("Name of the ClientAccessServer that hosts this virtual directory."),
    service: Service.describe("Which Exchange service this virtual directory serves."),
    internalUrl: httpUrl
      .optional()
      .describe("InternalUrl: the URL used inside the organisation and for CAS-to-CAS proxying."),
    externalUrl: httpUrl
      .nullable()
      .optional()
      .describe("ExternalUrl: the public URL; null or absent when the directory is not reachable from the Internet."),
    internalAuthenticationMethods: authList("InternalUrl"),
    externalAuthenticationMethods: authList("ExternalUrl"),
    crossSiteRedirectType: z
      .enum(["Manual", "Silent"])
      .optional()
      .describe("Owa/Ecp only: how users whose mailbox is in another site are redirected (default Manual)."),
    exchange2003Url: httpUrl
      .optional()
      .describe("Owa only: the Exchange 2003 front end's OWA URL, directory included (https://legacy.example.com/exchange), where users with an Exchange 2003 mailbox are sent (R-OWA-6, R-OWA-9)."),
    legacyRedirectType: z
      .enum(["Silent", "Manual"])
      .optional()
      .describe("Owa only: how users are sent to an Exchange 2007 CAS or a 2003 front end when this directory does not use forms-based authentication: Silent (302, the default) or Manual (a page showing the legacy URL) (R-OWA-10)."),
    redirectToOptimalOwaServer: z
      .boolean()
      .optional()
      .describe("Owa only: false never redirects a user whose mailbox is in another site; the request is proxied or refused (R-OWA-11). Default true."),
    internalConnectionSettings: z
      .array(ConnectionSetting)
      .max(8)
      .optional()
      .describe("Pop3/Imap4 only: endpoints used inside the organisation and for proxying."),
    externalConnectionSettings: z
      .array(ConnectionSetting)
      .max(8)
      .optional()
      .describe("Pop3/Imap4 only: endpoints published to Internet clients."),
  })
  .describe("An Exchange virtual directory (or POP3/IMAP4 service settings) on one server."),
  [
    {
      rule: "!has(self.crossSiteRedirectType) || self.service in ['Owa', 'Ecp']",
      message: "crossSiteRedirectType applies to Owa and Ecp only",
      field: "crossSiteRedirectType",
      check: (s) => s.crossSiteRedirectType === undefined || s.service === "Owa" || s.service === "Ecp",
    },
    {
      rule: "!has(self.exchange2003Url) || self.service == 'Owa'",
      message: "exchange2003Url applies to Owa only",
      field: "exchange2003Url",
      check: (s) => s.exchange2003Url === undefined || s.service === "Owa",
    },
    {
      rule: "!has(self.legacyRedirectType) || self.service == 'Owa'",
      message: "legacyRedirectType applies to Owa only",
      field: "legacyRedirectType",
      check: (s) => s.legacyRedirectType === undefined || s.service === "Owa",
    },
    {
      rule: "!has(self.redirectToOptimalOwaServer) || self.service == 'Owa'",
      message: "redirectToOptimalOwaServer applies to Owa only",
      field: "redirectToOptimalOwaServer",
      check: (s) => s.redirectToOptimalOwaServer === undefined || s.service === "Owa",
    },
    {
      rule: "(!has(self.internalConnectionSettings) && !has(self.externalConnectionSettings)) || self.service in ['Pop3', 'Imap4']",
      message: "internalConnectionSettings/externalConnectionSettings apply to Pop3 and Imap4 only",
      field: "internalConnectionSettings",
      check: (s) => isMail(s) || (s.internalConnectionSettings === undefined && s.externalConnectionSettings === undefined),
    },
    {
      rule: "self.service in ['Pop3', 'Imap4'] || has(self.internalUrl)",
      message: "internalUrl is required for HTTP services",
      field: "internalUrl",
      check: (s) => isMail(s) || s.internalUrl !== undefined,
    },
    {
      rule: "!(self.service in ['Pop3', 'Imap4']) || (has(self.internalConnectionSettings) && size(self.internalConnectionSettings) > 0)",
      message: "internalConnectionSettings is required for Pop3 and Imap4",
      field: "internalConnectionSettings",
      check: (s) => !isMail(s) || (s.internalConnectionSettings?.length ?? 0) > 0,
    },
  ],
);

export const VirtualDirectory = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("VirtualDirectory"),
  metadata: ObjectMeta,
  spec: VirtualDirectorySpec,
  status: Status.optional(),
});
export type VirtualDirectory = z.infer<typeof VirtualDirectory>;
