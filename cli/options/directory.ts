// The mailbox directory's options, taken by every command that looks mailboxes up (sidecar,
// mail-proxy, standalone): where the directory is (CSV or LDAP), how LDAP is reached and cached,
// and the per-request deadline and failure policy. docs/cli.md and docs/directory.md describe them.
import { z } from "zod";
import { DEFAULT_LOOKUP_TIMEOUT_MS } from "../../sidecar/authz/decision-service.js";
import { defineOptions, opt } from "./define.js";

// The --ldap-*/--directory-* values are checked (and named in errors) by directoryOptionsFromFlags
// and openDirectory's schema; here they pass through as typed on the command line.
const raw = z.string().optional();

export const directoryOptions = defineOptions("directory", {
  directory: {
    flags: "--directory <spec>",
    help: "mailbox directory: a Get-Mailbox CSV export (*.csv) or an ldap(s)://host[:port][/baseDN] URL",
    required: true,
    schema: z.string().min(1, "--directory needs a CSV file (Get-Mailbox | Export-Csv) or an ldap(s):// URL"),
  },
  ldapBaseDn: { flags: "--ldap-base-dn <dn>", help: "LDAP search base, e.g. DC=contoso,DC=com", schema: raw },
  ldapBindDn: { flags: "--ldap-bind-dn <dn>", help: "LDAP simple-bind DN (service account)", schema: raw },
  ldapPasswordFile: { flags: "--ldap-password-file <file>", help: "file holding the bind password (mounted Secret)", schema: raw },
  ldapCaFile: { flags: "--ldap-ca-file <file>", help: "PEM CA bundle for LDAPS / StartTLS", schema: raw },
  ldapTlsServerName: { flags: "--ldap-tls-server-name <name>", help: "certificate name to expect, when not the URL host", schema: raw },
  ldapStarttls: { flags: "--ldap-starttls", help: "upgrade ldap:// with StartTLS before binding", schema: z.boolean().optional() },
  ldapTimeoutMs: {
    flags: "--ldap-timeout-ms <ms>",
    help: "timeout of every LDAP operation (connect, bind, search); a request waits at most --lookup-timeout-ms for it",
    default: "5000",
    schema: raw,
  },
  ldapPoolSize: { flags: "--ldap-pool-size <n>", help: "bound LDAP connections kept open", default: "4", schema: raw },
  ldapDomain: {
    flags: "--ldap-domain <NETBIOS=DN>",
    help: "NetBIOS domain name for DOMAIN\\user (repeatable)",
    repeatable: true,
    schema: z.array(z.string()).optional(),
  },
  directoryCacheTtl: { flags: "--directory-cache-ttl <seconds>", help: "how long a found mailbox is cached", default: "300", schema: raw },
  directoryNegativeTtl: { flags: "--directory-negative-ttl <seconds>", help: "how long an unknown user is cached", default: "60", schema: raw },
  directoryCacheSize: { flags: "--directory-cache-size <n>", help: "most cached identities (LRU)", default: "100000", schema: raw },
  directoryMaxStale: {
    flags: "--directory-max-stale <seconds>",
    help: "serve expired answers this long while the directory is down or too slow",
    default: "86400",
    schema: raw,
  },
  directoryFailPolicy: {
    flags: "--directory-fail-policy <policy>",
    help: "unseen users while the directory is down: unavailable (503) | not-found",
    default: "unavailable",
    schema: raw,
  },
  directoryMaxInFlight: {
    flags: "--directory-max-in-flight <n>",
    help: "most LDAP look-ups running at once; past it a look-up is answered as if the directory were down",
    default: "64",
    schema: raw,
  },
  lookupTimeoutMs: {
    flags: "--lookup-timeout-ms <ms>",
    help: "per-request directory deadline: past it a cached answer, however old (up to --directory-max-stale), or --on-directory-failure; keep it below Envoy's ext_authz timeout",
    default: String(DEFAULT_LOOKUP_TIMEOUT_MS),
    schema: opt.int(5, 10_000),
  },
  onDirectoryFailure: {
    flags: "--on-directory-failure <policy>",
    help: "when the directory is down or misses the deadline with no cached answer: fail-closed (503, IMAP/POP3 try later) | local (the receiving site serves)",
    default: "fail-closed",
    schema: z.enum(["fail-closed", "local"]),
  },
});
