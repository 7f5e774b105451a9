// `cas-gateway explain --manifests DIR --directory FILE --url URL [--user U] [--header 'K: V']...
//   [--method M] [--body-file F] [--site NAME] [--down server[/Service]]... [--pin SERVER] [--json]`
// Or `cas-gateway explain --gateway http://HOST:ADMINPORT --url URL ...`: the running gateway decides
// (POST /explain), against what it has in force.
// Runs the decision engine on one request and prints the decision, the numbered trace and the rules:
// what an administrator runs to answer "why did this user get that page?".
// pop3://host and imap://host URLs explain a POP3/IMAP4 login (--user is the login name).
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { z } from "zod";
import { SERVICES, type Service } from "../../crds/index.js";
import { formatError } from "../../operator/provider/manifests.js";
import { loadOrganisation } from "../../operator/provider/organisation.js";
import { healthFromDown } from "../../model/health.js";
import { decide } from "../../sidecar/decision/engine.js";
import type { ClientRequest, Decision } from "../../sidecar/decision/types.js";

const HeaderFlag = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:\s?.*$/, "must look like 'Name: value'")
  .transform((s) => {
    const i = s.indexOf(":");
    return [s.slice(0, i).trim().toLowerCase(), s.slice(i + 1).trim()] as const;
  });

const DownFlag = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(\/[A-Za-z0-9]+)?$/, "must be server or server/Service");

export const ExplainFlags = z.object({
  manifests: z.string().min(1, "--manifests needs a directory").optional(),
  directory: z.string().min(1, "--directory needs the mailbox CSV file").optional(),
  gateway: z
    .string()
    .refine((u) => {
      try {
        return ["http:", "https:"].includes(new URL(u).protocol);
      } catch {
        return false;
      }
    }, "--gateway must be the admin address of a running gateway, e.g. http://127.0.0.1:9902")
    .optional(),
  url: z
    .string()
    .min(1)
    .refine((u) => {
      try {
        return ["http:", "https:", "pop3:", "pop3s:", "imap:", "imaps:"].includes(new URL(u).protocol);
      } catch {
        return false;
      }
    }, "--url must be an absolute http(s):// URL, or pop3:// / imap:// for a mail login"),
  user: z.string().min(1).max(320).optional(),
  header: z.array(HeaderFlag).default([]),
  method: z.string().regex(/^[A-Za-z_-]{1,32}$/, "--method must be an HTTP method").optional(),
  bodyFile: z.string().min(1).optional(),
  site: z.string().min(1).optional(),
  down: z.array(DownFlag).default([]),
  pin: z.string().min(1).optional(),
  mechanism: z.string().regex(/^[A-Za-z0-9-]{1,20}$/).optional(),
  sourceIp: z.string().min(1).max(64).optional(),
  json: z.boolean().optional(),
});
export type ExplainFlags = z.input<typeof ExplainFlags>;

export interface ExplainResult {
  readonly exitCode: 0 | 1 | 2;
  readonly stdout: string;
  readonly stderr: string;
  readonly decision?: Decision;
}

/** Build the request `explain` feeds the engine. */
export function explainRequest(flags: z.output<typeof ExplainFlags>, body: string | undefined): ClientRequest {
  const u = new URL(flags.url);
  const proto = u.protocol.replace(/s?:$/, "");
  if (proto === "pop3" || proto === "imap") {
    return {
      method: "LOGIN",
      host: u.host,
      path: "",
      scheme: "https",
      headers: {},
      mail: { protocol: proto === "pop3" ? "Pop3" : "Imap4", user: flags.user ?? "", mechanism: (flags.mechanism ?? "PLAIN").toUpperCase() },
      ...(flags.sourceIp ? { sourceAddress: flags.sourceIp } : {}),
    };
  }
  const headers: Record<string, string> = {};
  // --user: authenticate as U with Basic (the password is never looked at).
  if (flags.user) headers["authorization"] = `Basic ${Buffer.from(`${flags.user}:explain`, "utf8").toString("base64")}`;
  for (const [k, v] of flags.header) headers[k] = v;
  headers["host"] ??= u.host;
  return {
    method: (flags.method ?? (body !== undefined ? "POST" : "GET")).toUpperCase(),
    host: headers["host"],
    path: `${u.pathname}${u.search}`,
    scheme: u.protocol === "http:" ? "http" : "https",
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(flags.pin ? { pinnedServer: flags.pin } : {}),
    ...(flags.sourceIp ? { sourceAddress: flags.sourceIp } : {}),
  };
}

export function formatDecision(d: Decision): string {
  const lines: string[] = [];
  switch (d.outcome) {
    case "local":
    case "proxy":
      lines.push(
        `decision: ${d.outcome} → site ${d.targetSite}${d.targetServer ? `, server ${d.targetServer}` : ""}, cluster ${d.cluster}` +
          (d.upstreamPath ? `, upstream path ${d.upstreamPath} (rewrite ${d.rewrite})` : "") +
          (d.mailBackend ? `, backend ${d.mailBackend.host}:${d.mailBackend.port} ${d.mailBackend.encryption}` : "") +
          `, affinity ${d.affinity}`,
      );
      break;
    case "redirect":
      lines.push(`decision: redirect (${d.kind}${d.kind === "eas451" ? ": HTTP 451, X-MS-Location" : d.kind === "silent" ? ": HTTP 302" : d.kind === "manual" ? ": page with a link" : d.kind === "autodiscoverAddr" ? ": Autodiscover redirectAddr answer" : ": auto-submitting sign-on form"}) → ${d.url}`);
      break;
    case "error":
      lines.push(`decision: error ${d.status}: ${d.reason}`);
      break;
  }
  d.trace.forEach((t, i) => lines.push(`${String(i + 1).padStart(3)}. ${t}`));
  lines.push(`rules: ${d.rules.length ? d.rules.join(", ") : "(none)"}`);
  return `${lines.join("\n")}\n`;
}

export async function runExplain(raw: ExplainFlags): Promise<ExplainResult> {
  const parsed = ExplainFlags.safeParse(raw);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `--${i.path.map(String).join(".").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}`).join("\n");
    return { exitCode: 2, stdout: "", stderr: `${msg}\n` };
  }
  const flags = parsed.data;
  if (flags.gateway) {
    if (flags.manifests || flags.directory || flags.down.length > 0) {
      return { exitCode: 2, stdout: "", stderr: "--gateway asks the running gateway, which uses its own configuration, directory and health: leave out --manifests, --directory and --down\n" };
    }
    return explainRemote(flags.gateway, flags);
  }
  if (!flags.manifests || !flags.directory) {
    return { exitCode: 2, stdout: "", stderr: "either --gateway http://HOST:PORT (a running gateway's admin port) or both --manifests DIR and --directory FILE\n(run 'cas-gateway explain --help' for the options)\n" };
  }
  const org = await loadOrganisation(flags.manifests, flags.directory);
  let stderr = "";
  if (!org.directory) {
    return { exitCode: 1, stdout: "", stderr: org.errors.map((e) => `${formatError(e)}\n`).join("") || `${flags.directory}: cannot read the mailbox directory\n` };
  }
  if (org.errors.length > 0) {
    stderr += `warning: ${org.errors.length} problem(s) in the manifests; objects with errors are left out (run \`cas-gateway validate\`)\n`;
  }
  if (flags.site && !org.topology.sites.has(flags.site)) {
    return { exitCode: 2, stdout: "", stderr: `--site: no ADSite "${flags.site}" (sites: ${[...org.topology.sites.keys()].join(", ")})\n` };
  }
  for (const d of flags.down) {
    const [server, service] = d.split("/");
    if (!org.topology.servers.has(server)) return { exitCode: 2, stdout: "", stderr: `--down ${d}: no ClientAccessServer "${server}"\n` };
    if (service !== undefined && !(SERVICES as readonly string[]).includes(service)) {
      return { exitCode: 2, stdout: "", stderr: `--down ${d}: "${service}" is not a service (${SERVICES.join(", ")})\n` };
    }
  }
  let body: string | undefined;
  if (flags.bodyFile) {
    try {
      body = await readFile(flags.bodyFile, "utf8");
    } catch (err) {
      return { exitCode: 2, stdout: "", stderr: `--body-file ${flags.bodyFile}: ${err instanceof Error ? err.message : String(err)}\n` };
    }
  }
  const req = explainRequest(flags, body);
  const decision = decide(req, org.topology, org.directory, healthFromDown(flags.down as (string | `${string}/${Service}`)[]), {
    ...(flags.site ? { defaultSite: flags.site } : {}),
  });
  const stdout = flags.json ? `${JSON.stringify(decision, null, 2)}\n` : formatDecision(decision);
  return { exitCode: 0, stdout, stderr, decision };
}

/** Ask a running gateway (POST /explain on its admin port): the configuration, directory, health and pins in force there. */
async function explainRemote(gateway: string, flags: z.output<typeof ExplainFlags>): Promise<ExplainResult> {
  let body: string | undefined;
  if (flags.bodyFile) {
    try {
      body = await readFile(flags.bodyFile, "utf8");
    } catch (err) {
      return { exitCode: 2, stdout: "", stderr: `--body-file ${flags.bodyFile}: ${err instanceof Error ? err.message : String(err)}\n` };
    }
  }
  const query = {
    url: flags.url,
    ...(flags.user ? { user: flags.user } : {}),
    header: flags.header.map(([k, v]) => `${k}: ${v}`),
    ...(flags.method ? { method: flags.method } : {}),
    ...(flags.site ? { site: flags.site } : {}),
    ...(flags.pin ? { pin: flags.pin } : {}),
    ...(flags.mechanism ? { mechanism: flags.mechanism } : {}),
    ...(flags.sourceIp ? { sourceIp: flags.sourceIp } : {}),
    ...(body !== undefined ? { body } : {}),
  };
  const url = new URL("/explain", gateway);
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(query), signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const why = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    return { exitCode: 1, stdout: "", stderr: `--gateway ${gateway}: cannot reach the gateway's admin port (${why}); is it running, and is this its --admin-port?\n` };
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { exitCode: 1, stdout: "", stderr: `--gateway ${gateway}: ${url.href} answered ${res.status} without JSON: ${text.slice(0, 200)}\n` };
  }
  if (!res.ok) {
    const err = (json as { error?: string }).error ?? text;
    return { exitCode: res.status === 400 ? 2 : 1, stdout: "", stderr: `--gateway ${gateway}: ${err}\n` };
  }
  const answer = z.object({ topologyVersion: z.string().nullable(), down: z.array(z.string()), text: z.string(), decision: z.unknown() }).safeParse(json);
  if (!answer.success) return { exitCode: 1, stdout: "", stderr: `--gateway ${gateway}: unexpected answer from ${url.href}\n` };
  const a = answer.data;
  const stderr = `running gateway ${gateway}: topology version ${a.topologyVersion ?? "(none yet)"}; down: ${a.down.length ? a.down.join(", ") : "none"}\n`;
  return { exitCode: 0, stdout: flags.json ? `${JSON.stringify(a.decision, null, 2)}\n` : a.text, stderr, decision: a.decision as Decision };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  program
    .command("explain")
    .description("Decide one request the way the gateway would, and print the decision with its trace and rule IDs.")
    .option("-m, --manifests <dir>", "directory of casgateway.io manifests (YAML); with --directory, instead of --gateway")
    .option("-d, --directory <file>", "mailbox directory: Get-Mailbox | Export-Csv file")
    .option("--gateway <url>", "ask a running gateway instead (its admin address, e.g. http://127.0.0.1:9902): the configuration, directory, health and pins in force there")
    .requiredOption("-u, --url <url>", "request URL, e.g. https://mail.contoso.com/owa/ (pop3://host or imap://host for a mail login)")
    .option("--user <user>", "authenticate as this user (Basic credentials; the POP3/IMAP4 login name)")
    .option("-H, --header <header>", "request header 'Name: value' (repeatable)", collect, [])
    .option("-X, --method <method>", "HTTP method (default GET, or POST with --body-file)")
    .option("--body-file <file>", "request body (EWS SOAP, Autodiscover XML, OWA logon form)")
    .option("--site <name>", "receiving site when the URL's host is not a front-door host name")
    .option("--down <server[/Service]>", "treat a server, or one service on it, as down (repeatable)", collect, [])
    .option("--pin <server>", "a verified affinity pin to this server (the sidecar's signed cookie)")
    .option("--mechanism <mech>", "POP3/IMAP4 authentication mechanism (PLAIN, LOGIN, NTLM, USER)")
    .option("--source-ip <ip>", "client address (affinity by address when there is no identity)")
    .option("--json", "print the decision as JSON")
    .action(async (opts: ExplainFlags) => {
      const r = await runExplain(opts);
      if (r.stderr) process.stderr.write(r.stderr);
      if (r.stdout) process.stdout.write(r.stdout);
      process.exitCode = r.exitCode;
    });
}
