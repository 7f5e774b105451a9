// `cas-gateway import --from DIR --out DIR [--namespace NS] [--hostname SITE=HOST]...
//   [--server-site SERVER=SITE]... [--exchange2003-pop3 PORT:ENC] [--exchange2003-imap4 PORT:ENC]`
// Turns an Exchange organisation's own exports (scripts/Export-CasTopology.ps1, CLIXML) into
// casgateway.io manifests: one file per site plus databases.yaml. docs/import.md.
import type { Command } from "commander";
import { z } from "zod";
import { k8sName } from "../../crds/index.js";
import { formatProblem, importToDirectory, type ImportOptions } from "../../importer/index.js";
import { addOptions, defineOptions, flagName } from "../options/index.js";

const Pair = (what: string) =>
  z
    .string()
    .regex(/^[^=\s]+=[^=\s]+$/, `must be ${what}`)
    .transform((s) => {
      const i = s.indexOf("=");
      return [s.slice(0, i), s.slice(i + 1)] as const;
    });

const MailEndpoint = z
  .string()
  .regex(/^\d{1,5}:(ssl|tls|none)$/i, "must be PORT:SSL, PORT:TLS or PORT:NONE, e.g. 995:SSL")
  .transform((s) => {
    const [port, enc] = s.split(":");
    const e = enc.toLowerCase();
    return { port: Number(port), encryption: e === "ssl" ? ("Ssl" as const) : e === "tls" ? ("Tls" as const) : ("None" as const) };
  })
  .refine((m) => m.port >= 1 && m.port <= 65535, "port must be 1-65535");

/** The command's options, defined once (cli/options/define.ts): flags, help and schema together. */
export const importOptions = defineOptions("import", {
  from: { flags: "-f, --from <dir>", help: "directory of the exports (<cmdlet>.xml files, as scripts/Export-CasTopology.ps1 writes them)", required: true, schema: z.string().min(1, "needs the directory of exports") },
  out: { flags: "-o, --out <dir>", help: "directory to write the manifests to (replaced as a whole; created when missing)", required: true, schema: z.string().min(1, "needs a directory") },
  namespace: { flags: "-n, --namespace <ns>", help: "metadata.namespace of every object", schema: k8sName.optional() },
  hostname: {
    flags: "--hostname <site=host>",
    help: "a front-door host name of a site beyond its ExternalUrl hosts (repeatable)",
    repeatable: true,
    schema: z.array(Pair("SITE=HOST, e.g. usa=mail.contoso.com")).default([]),
  },
  serverSite: {
    flags: "--server-site <server=site>",
    help: "the site of a server whose export names none, e.g. Exchange 2003 (repeatable)",
    repeatable: true,
    schema: z.array(Pair("SERVER=SITE, e.g. E2003=USA")).default([]),
  },
  exchange2003Pop3: { flags: "--exchange2003-pop3 <port:enc>", help: "POP3 of every Exchange 2003 server, which no cmdlet exports, e.g. 995:SSL", schema: MailEndpoint.optional() },
  exchange2003Imap4: { flags: "--exchange2003-imap4 <port:enc>", help: "IMAP4 of every Exchange 2003 server, e.g. 993:SSL", schema: MailEndpoint.optional() },
});

export const ImportFlags = z.object(importOptions.shape);
export type ImportFlags = z.input<typeof ImportFlags>;

export interface ImportRun {
  readonly exitCode: 0 | 1 | 2;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runImport(raw: ImportFlags): Promise<ImportRun> {
  const parsed = ImportFlags.safeParse(raw);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${flagName(String(i.path[0] ?? ""))}: ${i.message}`);
    return { exitCode: 2, stdout: "", stderr: `${msg.join("\n")}\n` };
  }
  const f = parsed.data;
  const opts: ImportOptions = {
    ...(f.namespace ? { namespace: f.namespace } : {}),
    hostnames: f.hostname,
    serverSites: f.serverSite,
    exchange2003Mail: {
      ...(f.exchange2003Pop3 ? { Pop3: f.exchange2003Pop3 } : {}),
      ...(f.exchange2003Imap4 ? { Imap4: f.exchange2003Imap4 } : {}),
    },
  };
  let r;
  try {
    r = await importToDirectory(f.from, f.out, opts);
  } catch (err) {
    return { exitCode: 1, stdout: "", stderr: `${err instanceof Error ? err.message : String(err)}\n` };
  }
  const warn = r.warnings.map((w) => `warning: ${formatProblem(w)}\n`).join("");
  if (r.errors.length > 0) {
    const errs = r.errors.map((e) => `${formatProblem(e)}\n`).join("");
    return { exitCode: 1, stdout: "", stderr: `${errs}${warn}import failed: ${r.errors.length} error(s); nothing written to ${f.out}\n` };
  }
  const count = (k: string) => r.objects.filter((o) => o.object.kind === k).length;
  const summary =
    `imported ${count("ADSite")} sites, ${count("ClientAccessServer")} servers, ${count("VirtualDirectory")} virtual directories, ` +
    `${count("MailboxDatabase")} databases into ${f.out} (${[...r.files.keys()].join(", ")}); ${r.warnings.length} warning(s)\n` +
    `next: cas-gateway validate --manifests ${f.out} --directory <Get-Mailbox export>, then kubectl apply -f ${f.out}\n`;
  return { exitCode: 0, stdout: summary, stderr: warn };
}

export function register(program: Command): void {
  const cmd = program
    .command("import")
    .description(
      "Turn Exchange Management Shell exports (Export-Clixml of Get-ExchangeServer, Get-*VirtualDirectory, Get-OutlookAnywhere, Get-PopSettings, Get-ImapSettings, Get-MailboxDatabase, Get-ADSite; scripts/Export-CasTopology.ps1 writes them) into casgateway.io manifests: one file per site plus databases.yaml. Nothing is written when any export has an error. docs/import.md.",
    );
  addOptions(cmd, importOptions).action(async (opts: ImportFlags) => {
    const r = await runImport(opts);
    if (r.stderr) process.stderr.write(r.stderr);
    if (r.stdout) process.stdout.write(r.stdout);
    process.exitCode = r.exitCode;
  });
}
