// `cas-gateway validate --manifests DIR [--directory FILE] [--print-topology]`: load an organisation
// the way the gateway would, print every problem as file:line:column: Kind/name: field: message,
// and exit 1 when anything is wrong (warnings alone keep exit 0).
import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { z } from "zod";
import { formatError, type ManifestError } from "../../operator/provider/manifests.js";
import { loadOrganisation, type Organisation } from "../../operator/provider/organisation.js";
import type { Topology } from "../../model/topology/types.js";
import { relationshipForAddress } from "../../model/topology/organization-relationship.js";
import type { CsvDirectory } from "../../model/directory/csv-directory.js";
import type { MailboxRecord } from "../../model/directory/types.js";

const ValidateFlags = z.object({
  manifests: z.string().min(1, "--manifests needs a directory"),
  directory: z.string().min(1).optional(),
  printTopology: z.boolean().optional(),
  namespace: z.string().min(1).optional(),
});
export type ValidateFlags = z.infer<typeof ValidateFlags>;

export interface ValidateResult {
  readonly exitCode: 0 | 1;
  /** Problems, one per line (errors and warnings). */
  readonly problems: readonly string[];
  /** Summary (and the topology table when asked for). */
  readonly report: readonly string[];
}

/** Mailboxes whose database is not in the topology, or remote ones no relationship covers: routing for them would fail. */
export function directoryWarnings(topology: Topology, directory: CsvDirectory, file: string): ManifestError[] {
  const out: ManifestError[] = [];
  const warn = (r: MailboxRecord, field: string, message: string) =>
    out.push({ file, line: directory.lineOf(r) ?? 0, column: 1, kind: "Mailbox", name: r.primarySmtpAddress, field, message });
  // By database first: only the rows of unknown databases are parsed again (cheap on a 1M-row export).
  for (const db of directory.databases().keys()) {
    // "" is a remote (Exchange Online) mailbox's: no on-premises database; an organisation
    // relationship must cover its target address (R-HYB-1).
    if (db === "") {
      for (const r of directory.recordsInDatabase(db)) {
        if (!r.remote || relationshipForAddress(topology, r.remote.targetAddress)) continue;
        const domain = r.remote.targetAddress.slice(r.remote.targetAddress.lastIndexOf("@") + 1);
        warn(r, "RemoteRoutingAddress", `R-HYB-1: ${r.remote.recipientTypeDetails} with target address ${r.remote.targetAddress}: no enabled OrganizationRelationship lists ${domain}; requests for this mailbox will be refused`);
      }
      continue;
    }
    if (topology.findDatabase(db)) continue;
    for (const r of directory.recordsInDatabase(db)) {
      warn(r, "Database", `database "${r.database}" is not a MailboxDatabase of the organisation; requests for this mailbox will be refused`);
    }
  }
  out.sort((a, b) => a.line - b.line);
  return out;
}

export async function runValidate(flags: ValidateFlags): Promise<ValidateResult> {
  const problems: string[] = [];
  try {
    const s = await stat(flags.manifests);
    if (!s.isDirectory()) throw new Error("not a directory");
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { exitCode: 1, problems: [`${flags.manifests}: cannot read manifest directory: ${why}`], report: [] };
  }
  const org = await loadOrganisation(flags.manifests, flags.directory, flags.namespace ? { defaultNamespace: flags.namespace } : {});
  const warnings = [...org.warnings];
  if (org.directory && flags.directory) warnings.push(...directoryWarnings(org.topology, org.directory, flags.directory));
  for (const e of byLocation(org.errors)) problems.push(formatError(e));
  for (const w of byLocation(warnings)) problems.push(formatError({ ...w, message: `warning: ${w.message}` }));

  const report: string[] = [];
  const t = org.topology;
  const vdirs = [...t.servers.values()].reduce((n, s) => n + s.vdirs.size, 0);
  const counts = [
    plural(t.sites.size, "site"),
    plural(t.servers.size, "server"),
    plural(vdirs, "virtual directory", "virtual directories"),
    plural(t.databases.size, "database"),
    ...(t.organizationRelationships.size > 0 ? [plural(t.organizationRelationships.size, "organisation relationship")] : []),
    ...(org.directory ? [plural(org.directory.size, "mailbox", "mailboxes")] : []),
  ].join(", ");
  const verdict = org.errors.length > 0 ? `INVALID: ${plural(org.errors.length, "error")}` : "OK";
  report.push(
    `${verdict}: ${counts}; ${plural(warnings.length, "warning")}; topology version ${t.version}` +
      (org.errors.length > 0 ? " (objects with errors left out)" : ""),
  );
  if (flags.printTopology) report.push("", ...topologyTable(org));
  return { exitCode: org.errors.length > 0 ? 1 : 0, problems, report };
}

/** A compact per-site view: where each site's front door is, its servers, services and databases. */
export function topologyTable(org: Pick<Organisation, "topology" | "directory">): string[] {
  const t = org.topology;
  const mailboxesPerDb = new Map<string, number>();
  for (const [name, count] of org.directory?.databases() ?? []) {
    const db = t.findDatabase(name);
    if (db) mailboxesPerDb.set(db.name, (mailboxesPerDb.get(db.name) ?? 0) + count);
  }
  const out: string[] = [];
  for (const site of t.sites.values()) {
    const facing = site.internetFacing ? "internet facing" : "not internet facing";
    const hosts = site.hostnames.length ? site.hostnames.join(", ") : "no host names";
    out.push(`site ${site.name} (${facing}; ${hosts})`);
    const rows: string[][] = [["  SERVER", "VERSION", "ROLES", "EXTERNAL URL HOSTS", "SERVICES"]];
    for (const name of site.servers) {
      const s = t.servers.get(name);
      if (!s) continue;
      const roles = [s.clientAccess ? "CAS" : "", s.mailbox ? "MBX" : ""].filter(Boolean).join("+");
      const ext = new Set<string>();
      for (const v of s.vdirs.values()) if (v.externalUrl) ext.add(new URL(v.externalUrl).host);
      const flags = [s.maintenance ? "maintenance" : "", s.insecureSkipVerify ? "insecureSkipVerify" : ""].filter(Boolean);
      rows.push([
        `  ${name}${flags.length ? ` [${flags.join(",")}]` : ""}`,
        s.exchangeVersion,
        roles,
        [...ext].sort().join(",") || "-",
        [...s.vdirs.keys()].join(",") || "-",
      ]);
    }
    out.push(...columns(rows));
    const dbs = [...t.databases.values()].filter((d) => t.servers.get(d.activeServer)?.site === site.name);
    if (dbs.length) {
      const dbRows: string[][] = [["  DATABASE", "ACTIVE ON", "COPIES", ...(org.directory ? ["MAILBOXES"] : [])]];
      for (const d of dbs) {
        dbRows.push([
          `  ${d.databaseName}`,
          d.activeServer,
          d.servers.join(","),
          ...(org.directory ? [String(mailboxesPerDb.get(d.name) ?? 0)] : []),
        ]);
      }
      out.push(...columns(dbRows));
    }
    out.push("");
  }
  if (t.hostToSite.size) {
    out.push(`front-door host names: ${[...t.hostToSite].map(([h, s]) => `${h} -> ${s}`).join(", ")}`);
  }
  return out;
}

/** Errors in file order: by file, line, column (stable for equal positions). */
function byLocation(list: readonly ManifestError[]): ManifestError[] {
  return [...list].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}

function columns(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd());
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function register(program: Command): void {
  program
    .command("validate")
    .description(
      "Load an organisation (YAML manifests and optionally the mailbox CSV) and report every problem as file:line:column: Kind/name: field: message. Exit 1 on any error.",
    )
    .requiredOption("-m, --manifests <dir>", "directory of casgateway.io/v1alpha1 manifests (read recursively)")
    .option("-d, --directory <file>", "mailbox directory: Get-Mailbox | Export-Csv file")
    .option("-n, --namespace <ns>", "namespace for manifests that name none")
    .option("-t, --print-topology", "also print the topology: one table per site")
    .action(async (opts: unknown) => {
      const flags = ValidateFlags.parse(opts);
      const r = await runValidate(flags);
      for (const p of r.problems) process.stderr.write(`${p}\n`);
      for (const l of r.report) process.stdout.write(`${l}\n`);
      process.exitCode = r.exitCode;
    });
}
