// The decision engine: pure and synchronous over data already looked up (the caller resolves
// identityCandidates(req) with resolveIdentities() first). Never throws: an internal failure is an
// `error` decision with status 503. The rules it applies are defined in docs/rules.md and the
// choices it makes where they leave room are in docs/decisions.md.
import type { Service } from "../../crds/index.js";
import type { DatabaseInfo, ServerInfo, Topology } from "../../model/topology/types.js";
import type { DirectoryView } from "../../model/directory/types.js";
import { Ctx, isError, NO_TRACE, traceText, type TraceLine } from "./context.js";
import { identityCandidates, type IdentityCandidate } from "./identity.js";
import { decideEas } from "./rules/eas.js";
import { decideEws } from "./rules/ews.js";
import { decideMail } from "./rules/mail.js";
import { decideAutodiscover, decideOab, decideOutlook, decideOutlookWithoutMailbox, decidePowerShell } from "./rules/other.js";
import { decideLegacyPath, decideLegacyPathWithoutMailbox } from "./rules/legacy.js";
import { decideOwa } from "./rules/owa.js";
import { decideRemoteMailbox } from "./rules/hybrid.js";
import { exploitPattern } from "./security.js";
import { isConnectionAuthentication, legacyPathOf, serviceForRequest } from "./service.js";
import { serviceIndex, topologyIndex } from "./topology-index.js";
import type { HealthView } from "../../model/health.js";
import type { ClientRequest, Decision, ErrorDecision } from "./types.js";

export { serviceForRequest } from "./service.js";
export { identityCandidates } from "./identity.js";

export interface EngineOptions {
  /** Receiving site when the Host header matches no site's hostnames. */
  readonly defaultSite?: string;
  /**
   * identityCandidates(req), when the caller has already computed it (it needs the list to resolve
   * identities): saves extracting the identities twice. Must be for this same request.
   */
  readonly candidates?: readonly IdentityCandidate[];
  /**
   * Build the human trace (default true: explain, tests). The sidecar passes false: the rules are
   * the same, the trace is empty and none of its text is built (Ctx's TraceLine).
   */
  readonly trace?: boolean;
}

const STICKY: ReadonlySet<Service> = new Set<Service>(["Owa", "Ecp", "Ews"]);

export function decide(
  req: ClientRequest,
  topology: Topology,
  directory: DirectoryView,
  health: HealthView,
  options: EngineOptions = {},
): Decision {
  try {
    const d = decideUnsafe(req, topology, directory, health, options);
    if (options.trace !== false) (d.trace as string[]).push(finalLine(d));
    return d;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return {
      outcome: "error",
      status: 503,
      reason: "The gateway could not route this request. Try again in a few minutes.",
      rules: ["R-ENG-INTERNAL"],
      trace: [`R-ENG-INTERNAL: the engine failed (${msg}); answered 503 rather than guessing`],
    };
  }
}

// Per-database trace line, built once per DatabaseInfo (topologies are immutable).
const dbLines = new WeakMap<DatabaseInfo, string>();
function databaseLine(db: DatabaseInfo, active: ServerInfo): string {
  let line = dbLines.get(db);
  if (line === undefined) {
    line =
      `database ${db.databaseName}: active copy on ${active.name}, site ${active.site}, Exchange ${active.version}` +
      (db.servers.length > 1 ? ` (copies on ${db.servers.join(", ")}; the active one decides)` : "");
    dbLines.set(db, line);
  }
  return line;
}

/** The last trace line: what was decided. */
function finalLine(d: Decision): string {
  switch (d.outcome) {
    case "error":
      return `→ error ${d.status}: ${d.reason}`;
    case "redirect":
      return `→ redirect (${d.kind}) to ${d.url}`;
    default:
      return (
        `→ ${d.outcome} to site ${d.targetSite}${d.targetServer ? `, server ${d.targetServer}` : ""}: cluster ${d.cluster}` +
        (d.upstreamPath ? `, upstream path ${d.upstreamPath}` : "") +
        (d.mailBackend ? `, backend ${d.mailBackend.host}:${d.mailBackend.port} (${d.mailBackend.encryption})` : "") +
        `, affinity ${d.affinity}`
      );
  }
}

function pathOnly(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.slice(0, q);
}

/** The first trace line: the request and its service. */
function requestLine(req: ClientRequest, svc: Service | undefined): string {
  return req.mail
    ? `request: ${req.mail.protocol} login (${req.mail.mechanism || "?"}) → service ${req.mail.protocol}`
    : `request: ${req.method} ${pathOnly(req.path)} → service ${svc ?? "(none)"}`;
}

/** An answer before the receiving site is known; `first` is the request line, undefined when untraced. */
function early(status: number, reason: string, rule: `R-${string}`, first: string | undefined, line: TraceLine): ErrorDecision {
  const trace = first === undefined ? NO_TRACE : [first, `${rule}: ${traceText(line)}`];
  return { outcome: "error", status, reason, rules: [rule], trace };
}

function decideUnsafe(
  req: ClientRequest,
  topology: Topology,
  directory: DirectoryView,
  health: HealthView,
  options: EngineOptions,
): Decision {
  const index = topologyIndex(topology);
  const svc = serviceForRequest(req);
  const tracing = options.trace !== false;
  // R-SEC-1, R-SEC-3: the shapes of published attacks are refused before anything else is read.
  const exploit = exploitPattern(req);
  if (exploit) {
    const d = early(403, "This request was refused: it has the shape of a known attack on Exchange servers.", exploit.rule, tracing ? requestLine(req, svc) : undefined,
      () => `${exploit.pattern}: the ${exploit.attack} pattern (${exploit.cve}); refused, nothing in it selects a back end`);
    return { ...d, exploit: { cve: exploit.cve, attack: exploit.attack, pattern: exploit.pattern } };
  }
  if (!svc) {
    return early(404, "There is no Exchange application at this address.", "R-2013-4", tracing ? requestLine(req, svc) : undefined,
      "the front door serves Exchange's HTTP(S) applications, POP3 and IMAP4; this path is none of them");
  }

  const hostSite = index.hostExact.get(req.host) ?? topology.siteForHost(req.host);
  const siteName = hostSite ?? options.defaultSite;
  const local = siteName === undefined ? undefined : index.sites.get(siteName);
  if (!local) {
    return early(421, "This address is not served by this gateway.", "R-ENG-UNKNOWN-SITE", tracing ? requestLine(req, svc) : undefined,
      () => `host ${req.host} belongs to no site${options.defaultSite ? ` and the default site ${options.defaultSite} does not exist` : " and no default site is set"}`);
  }
  const ctx = new Ctx(req, topology, index, health, svc, local, tracing);
  if (tracing) ctx.note(requestLine(req, svc));
  ctx.note(() => `receiving site ${local.info.name} (${hostSite ? `host ${req.host}` : `host ${req.host} unknown: default site`})`);
  if (index.siteCount === 1) ctx.rule("R-GEN-1", () => `one site only (${local.info.name}): nothing is proxied or redirected between sites`);

  // R-LB-8: a connection that authenticates with NTLM/Negotiate was decided by its first request.
  const conn = req.connection;
  let iwaConnection = false;
  if (conn && !req.mail) {
    const bound = conn.bound;
    if (bound && bound.service === svc) {
      const server = topology.servers.get(bound.server);
      if (server && server.site === bound.site && server.vdirs.has(svc) && ctx.usable(server)) {
        ctx.rule("R-LB-8", () => `connection ${conn.key} was decided by its first NTLM/Negotiate request (${bound.decidedBy}): it stays on ${server.name}, site ${bound.site}; nothing in this request moves it`);
        return ctx.route({ site: bound.site, cls: server.versionClass, server, affinity: "none" }, bound.rewrite);
      }
      ctx.note(() => `connection ${conn.key} was bound to ${bound.server}, which can no longer take ${svc} (${server ? ctx.whyUnusable(server) : "not in the topology"}): decided afresh, the client authenticates again`);
    } else if (bound) {
      ctx.note(() => `connection ${conn.key} was bound for ${bound.service}; this request is ${svc}: decided on its own`);
    }
    iwaConnection = isConnectionAuthentication(req.headers["authorization"]);
    if (iwaConnection) {
      ctx.connectionAuth = true;
      ctx.rule("R-LB-8", () => `first NTLM/Negotiate request on connection ${conn.key}: decided by what names a mailbox without the handshake (URL, X-AnchorMailbox, pin), else the receiving site, whose CAS proxies onward; the user inside an AUTHENTICATE message is not used`);
    }
  }

  if (svc === "Oab") {
    // R-HYB-1: the OAB needs no mailbox, but one that moved to Exchange Online downloads it there.
    for (const c of options.candidates ?? identityCandidates(req)) {
      if (iwaConnection && c.source === "ntlm") continue;
      const r = directory.find(c.value);
      if (r.status !== "found") continue;
      if (r.mailbox.remote) {
        ctx.identity = c;
        ctx.mailbox = r.mailbox;
        ctx.note(() => `identity ${c.value} from ${c.source}: mailbox ${r.mailbox.primarySmtpAddress}`);
        return decideRemoteMailbox(ctx, r.mailbox.remote);
      }
      break;
    }
    // R-OAB-2: a 2013+ OAB named in the path goes to its generation mailbox's active server.
    const d = decideOab(ctx);
    if (d) return d;
    ctx.rule("R-OAB-1", "the Offline Address Book is never proxied between sites: served locally");
    return localDefault(ctx, false);
  }

  // Identity, in precedence order (identity.ts): the first that names a known mailbox wins.
  let candidates = options.candidates ?? identityCandidates(req);
  // R-LB-8: the handshake's own user never routes the connection.
  if (iwaConnection && candidates.some((c) => c.source === "ntlm")) candidates = candidates.filter((c) => c.source !== "ntlm");
  for (const c of candidates) {
    const r = directory.find(c.value);
    if (r.status === "found") {
      ctx.identity = c;
      ctx.mailbox = r.mailbox;
      ctx.note(() => `identity ${c.value} from ${c.source}: mailbox ${r.mailbox.primarySmtpAddress}`);
      break;
    }
    if (r.status === "unavailable") {
      ctx.identity = c;
      return ctx.error(503, "The mailbox directory cannot be reached right now. Try again in a few minutes.", "R-ENG-DIRECTORY-UNAVAILABLE",
        () => `identity ${c.value} from ${c.source}: the directory is unavailable (${r.reason})`);
    }
    ctx.note(() => `identity ${c.value} from ${c.source}: no such mailbox`);
  }
  // Exchange 2003's /exchange, /exchweb and /public (R-OWA-6, R-EWS-3).
  const legacy = svc === "Owa" || svc === "Public" ? legacyPathOf(req) : undefined;
  if (!ctx.mailbox) {
    if (legacy) {
      if (candidates.length > 0) ctx.identity = candidates[0];
      const d = decideLegacyPathWithoutMailbox(ctx, legacy);
      if (d) return d;
    }
    if (svc === "RpcHttp") {
      if (candidates.length > 0) ctx.identity = candidates[0];
      const d = decideOutlookWithoutMailbox(ctx);
      if (d) return d;
    }
    if (candidates.length === 0) {
      ctx.rule("R-ENG-NO-IDENTITY", "no identity in the request: the receiving site's servers challenge or sign the user in");
    } else {
      ctx.identity = candidates[0];
      ctx.rule("R-ENG-UNKNOWN-MAILBOX", "no mailbox for the identity: the receiving site's servers answer (failed sign-in or no-mailbox page), revealing nothing here");
    }
    return localDefault(ctx, STICKY.has(svc));
  }

  // R-HYB-1: a remote mailbox lives in Exchange Online: no on-premises server.
  const m = ctx.mailbox;
  if (m.remote) return decideRemoteMailbox(ctx, m.remote);
  // The mailbox site is the site of the server holding the database's active copy (R-2013-2).
  const db = index.findDatabase(m.database);
  const active = db ? topology.servers.get(db.activeServer) : m.homeServer ? index.findServer(m.homeServer) : undefined;
  if (!active) {
    return ctx.error(502, "Your mailbox could not be located. Contact your administrator.", "R-ENG-UNKNOWN-DATABASE",
      () => `database ${m.database} of ${m.primarySmtpAddress} is not in the topology`);
  }
  const mailboxSite = index.sites.get(active.site);
  if (!mailboxSite) {
    return ctx.error(502, "Your mailbox could not be located. Contact your administrator.", "R-ENG-UNKNOWN-DATABASE",
      () => `site ${active.site} of server ${active.name} is not in the topology`);
  }
  ctx.active = active;
  ctx.version = active.version;
  ctx.cls = active.versionClass;
  ctx.mailboxSite = mailboxSite;
  ctx.note(() => db ? databaseLine(db, active) : `database (home server ${m.homeServer}): active copy on ${active.name}, site ${active.site}, Exchange ${active.version}`);
  if (active.version !== 2003 && mailboxSite.info.casServers.length === 0) {
    return ctx.error(502, "No server is set up to open your mailbox. Contact your administrator.", "R-GEN-6",
      () => `site ${active.site} has Mailbox servers but no Client Access server`);
  }

  switch (svc) {
    case "Owa":
      return legacy ? decideLegacyPath(ctx, legacy) : decideOwa(ctx);
    case "Ecp":
      return decideOwa(ctx);
    case "Public":
      return decideLegacyPath(ctx, "public");
    case "ActiveSync":
      return decideEas(ctx);
    case "Ews":
      return decideEws(ctx);
    case "Pop3":
    case "Imap4":
      return decideMail(ctx);
    case "Autodiscover":
      return decideAutodiscover(ctx);
    case "Mapi":
    case "RpcHttp":
      return decideOutlook(ctx);
    case "PowerShell":
      return decidePowerShell(ctx);
    default:
      return ctx.error(404, "There is no Exchange application at this address.", "R-2013-4", () => `service ${svc} is not a client protocol`);
  }
}

/** Served by the receiving site: no identity, unknown mailbox, or OAB. A verified pin still chooses the server. */
function localDefault(ctx: Ctx, sticky: boolean): Decision {
  const L = ctx.local;
  const svc = ctx.service;
  const si = serviceIndex(L, svc);
  const pin = ctx.pinned();
  if (pin && pin.vdirs.has(svc) && ctx.usable(pin) && (pin.clientAccess || pin.version === 2003) && ctx.service !== "Oab") {
    ctx.rule("R-LB-5", () => `verified affinity pin (cookie) to ${pin.name} honoured`);
    return ctx.route({ site: pin.site, cls: pin.versionClass, server: pin, affinity: "keep" });
  }
  const cls = si.classes[0];
  if (!cls) {
    return ctx.error(502, "This application is not offered at this address.", undefined, () => `site ${L.info.name} has no ${svc} directory`);
  }
  const mail = svc === "Pop3" || svc === "Imap4";
  const mode = mail ? "server" : sticky && cls !== "2013+" && ctx.affinityKey !== undefined ? "sticky" : "pool";
  if (mode === "sticky" && !ctx.identity) ctx.rule("R-LB-5", () => `affinity by client address ${ctx.req.sourceAddress}`);
  const t = ctx.pick(L, cls, { mode, crossSite: false, requireIwa: false, combined: false });
  if (isError(t)) return t;
  const affinity = mode === "pool" && pin ? "clear" : t.affinity;
  return ctx.route(affinity === t.affinity ? t : { site: t.site, cls: t.cls, server: t.server, affinity });
}
