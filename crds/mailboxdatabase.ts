import { z } from "zod";
import { API_VERSION, ObjectMeta, Status, k8sName, withCrossFieldRules } from "./common.js";

export const MailboxDatabaseSpec = withCrossFieldRules(
  z
    .object({
      databaseName: z
        .string()
        .min(1)
        .max(255)
        .optional()
        .describe(
          "The database's Exchange Name as Get-Mailbox and homeMDB show it (e.g. 'Mailbox Database 0311695863'), when it is not a valid Kubernetes name. Defaults to metadata.name; matched case-insensitively.",
        ),
      activeServer: k8sName.describe(
        "Server (ClientAccessServer with the Mailbox role) that holds the active copy. Change it to follow a database failover (R-2013-2).",
      ),
      servers: z
        .array(k8sName.describe("Name of a ClientAccessServer with the Mailbox role."))
        .min(1)
        .max(16)
        .describe("Servers holding a copy of the database (DAG members); activeServer must be one of them.")
        .meta({ "x-kubernetes-list-type": "set" }),
    })
    .describe("An Exchange mailbox database and where its active copy is mounted."),
  [
    {
      rule: "self.activeServer in self.servers",
      message: "activeServer must be one of servers",
      field: "activeServer",
      check: (s) => s.servers.includes(s.activeServer),
      explain: (s) => `activeServer must be one of servers: "${s.activeServer}" is not in [${s.servers.join(", ")}]; add it to servers or pick one of them`,
    },
  ],
);

export const MailboxDatabase = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("MailboxDatabase"),
  metadata: ObjectMeta,
  spec: MailboxDatabaseSpec,
  status: Status.optional(),
});
export type MailboxDatabase = z.infer<typeof MailboxDatabase>;
