// The casgateway.io/v1alpha1 API: every kind, and one parser for objects of any of them.
import { z } from "zod";
import { ADSite } from "./adsite.js";
import { ClientAccessServer } from "./clientaccessserver.js";
import { MailboxDatabase } from "./mailboxdatabase.js";
import { VirtualDirectory } from "./virtualdirectory.js";
import { OrganizationRelationship } from "./organizationrelationship.js";

export * from "./common.js";
export { ADSite, ADSiteSpec } from "./adsite.js";
export { ClientAccessServer, ClientAccessServerSpec } from "./clientaccessserver.js";
export { MailboxDatabase, MailboxDatabaseSpec, OfflineAddressBook } from "./mailboxdatabase.js";
export { VirtualDirectory, VirtualDirectorySpec, ConnectionSetting } from "./virtualdirectory.js";
export { OrganizationRelationship, OrganizationRelationshipSpec } from "./organizationrelationship.js";

export const KINDS = ["ADSite", "ClientAccessServer", "VirtualDirectory", "MailboxDatabase", "OrganizationRelationship"] as const;
export type Kind = (typeof KINDS)[number];

export const KIND_SCHEMAS = {
  ADSite,
  ClientAccessServer,
  VirtualDirectory,
  MailboxDatabase,
  OrganizationRelationship,
} as const;

/** Plural resource names, as the API server serves them. */
export const KIND_PLURALS: Record<Kind, string> = {
  ADSite: "adsites",
  ClientAccessServer: "clientaccessservers",
  VirtualDirectory: "virtualdirectories",
  MailboxDatabase: "mailboxdatabases",
  OrganizationRelationship: "organizationrelationships",
};

export const ApiObject = z.discriminatedUnion("kind", [ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase, OrganizationRelationship]);
export type ApiObject = z.infer<typeof ApiObject>;

export function isKind(k: unknown): k is Kind {
  return typeof k === "string" && (KINDS as readonly string[]).includes(k);
}
