// The mail proxy's test world: two sites (east, west) whose mailbox servers are real Dovecot
// instances on loopback, plus a site (north) whose server is down; a CSV directory; the real
// decision engine; and the proxy in front, with plain, STARTTLS and implicit-TLS listeners.
import { createHash, randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { stringify } from "yaml";
import { ApiObject } from "../../crds/index.js";
import { buildTopology } from "../../model/topology/build.js";
import type { Topology } from "../../model/topology/types.js";
import { decide, identityCandidates } from "../../sidecar/decision/engine.js";
import { ALL_HEALTHY, type HealthView } from "../../model/health.js";
import { parseCsvDirectory } from "../../model/directory/csv-directory.js";
import { MailProxy, type MailProxyOptions } from "../../sidecar/mail/index.js";
import { SettableStateSource } from "../../model/state.js";
import { makeTestCerts, type TestCerts } from "./certs.js";
import { freePort, removeDir, startDovecot, type Dovecot } from "./dovecot.js";

export const USERS = {
  alice: { user: "alice@contoso.test", password: "alice-pw" }, // east
  bob: { user: "bob@contoso.test", password: "bob-pw" }, // west
  carol: { user: "carol@contoso.test", password: 'p "w\\ d{3}' }, // west: needs quoting / literals
  dave: { user: "dave@contoso.test", password: "pässwörd ✓" }, // west: UTF-8, only as an IMAP literal
  nora: { user: "nora@contoso.test", password: "nora-pw" }, // north: server down
} as const;

export function makeMessage(i: number, bodyBytes: number, from = "sender@example.test"): Buffer {
  const head =
    `From: ${from}\r\nTo: someone@contoso.test\r\nSubject: test message ${i}\r\n` +
    `Date: Mon, 1 Jan 2024 00:00:${String(i % 60).padStart(2, "0")} +0000\r\nMessage-ID: <${i}.${randomBytes(6).toString("hex")}@example.test>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  // Lines of base64 text, and one starting with "." to exercise POP3 byte-stuffing.
  const lines: string[] = [".a line starting with a dot"];
  let n = 0;
  while (n < bodyBytes) {
    const l = randomBytes(57).toString("base64");
    lines.push(l);
    n += l.length + 2;
  }
  return Buffer.from(head + lines.join("\r\n") + "\r\n");
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export interface TopologyPorts {
  readonly east: Dovecot;
  readonly west: Dovecot;
  readonly northImapPort: number;
  readonly northPop3Port: number;
  readonly westSkipVerify?: boolean;
}

const obj = (o: unknown) => ApiObject.parse(o);
const meta = (name: string) => ({ name, namespace: "mail-test" });
const API = "casgateway.io/v1alpha1";

export function mailTopology(p: TopologyPorts): Topology {
  const topo = buildTopology(mailObjects(p));
  const errors = topo.problems.filter((x) => x.severity === "error");
  if (errors.length) throw new Error(`test topology has problems: ${JSON.stringify(errors)}`);
  return topo;
}

/** The test organisation as API objects (two sites with Dovecot, one whose server is down). */
export function mailObjects(p: TopologyPorts): ApiObject[] {
  const server = (name: string, site: string, skip = false) =>
    obj({
      apiVersion: API,
      kind: "ClientAccessServer",
      metadata: meta(name),
      spec: { site, fqdn: `${name}.${site}.contoso.test`, exchangeVersion: "2016", roles: ["ClientAccess", "Mailbox"], tls: { insecureSkipVerify: skip } },
    });
  const vdir = (server: string, service: "Imap4" | "Pop3", port: number, encryption: "None" | "Ssl" | "Tls") =>
    obj({
      apiVersion: API,
      kind: "VirtualDirectory",
      metadata: meta(`${server}-${service.toLowerCase()}`),
      spec: { server, service, internalConnectionSettings: [{ hostname: "127.0.0.1", port, encryption }], internalAuthenticationMethods: ["Basic"] },
    });
  const site = (name: string) => obj({ apiVersion: API, kind: "ADSite", metadata: meta(name), spec: { hostnames: [`${name}.contoso.test`] } });
  const db = (name: string, server: string) =>
    obj({ apiVersion: API, kind: "MailboxDatabase", metadata: meta(name), spec: { activeServer: server, servers: [server] } });
  return [
    site("east"),
    site("west"),
    site("north"),
    server("east-mbx", "east"),
    server("west-mbx", "west", p.westSkipVerify ?? false),
    server("north-mbx", "north"),
    // East is the receiving site: its own server is reached in the clear (same site, loopback).
    vdir("east-mbx", "Imap4", p.east.imapPort, "None"),
    vdir("east-mbx", "Pop3", p.east.pop3Port, "None"),
    // Cross-site credentials go over TLS only: STARTTLS for IMAP, implicit TLS for POP3.
    vdir("west-mbx", "Imap4", p.west.imapPort, "Tls"),
    vdir("west-mbx", "Pop3", p.west.pop3sPort, "Ssl"),
    vdir("north-mbx", "Imap4", p.northImapPort, "Ssl"),
    vdir("north-mbx", "Pop3", p.northPop3Port, "Ssl"),
    db("db-east", "east-mbx"),
    db("db-west", "west-mbx"),
    db("db-north", "north-mbx"),
  ];
}

export const DIRECTORY_CSV = `#TYPE Microsoft.Exchange.Data.Directory.Management.Mailbox
"Name","PrimarySmtpAddress","UserPrincipalName","SamAccountName","Database","EmailAddresses"
"alice","alice@contoso.test","alice@contoso.test","alice","db-east","SMTP:alice@contoso.test"
"bob","bob@contoso.test","bob@contoso.test","bob","db-west","SMTP:bob@contoso.test"
"carol","carol@contoso.test","carol@contoso.test","carol","db-west","SMTP:carol@contoso.test"
"dave","dave@contoso.test","dave@contoso.test","dave","db-west","SMTP:dave@contoso.test"
"nora","nora@contoso.test","nora@contoso.test","nora","db-north","SMTP:nora@contoso.test"
`;

/**
 * The mail organisation as files for the `cas-gateway mail-proxy` command: `<dir>/manifests/org.yaml`
 * (east and west on the given Dovecots, north on free ports nothing listens on) and
 * `<dir>/mailboxes.csv` (DIRECTORY_CSV plus `extraCsvRows`).
 */
export async function writeMailOrgFiles(dir: string, east: Dovecot, west: Dovecot, extraCsvRows = ""): Promise<{ manifests: string; csv: string }> {
  const manifests = join(dir, "manifests");
  const csv = join(dir, "mailboxes.csv");
  mkdirSync(manifests, { recursive: true });
  const objects = mailObjects({ east, west, northImapPort: await freePort(), northPop3Port: await freePort() });
  writeFileSync(join(manifests, "org.yaml"), objects.map((o) => stringify(o)).join("---\n"));
  writeFileSync(csv, DIRECTORY_CSV + extraCsvRows);
  return { manifests, csv };
}

export interface MailWorld {
  readonly dir: string;
  readonly certs: TestCerts;
  readonly east: Dovecot;
  readonly west: Dovecot;
  readonly topology: Topology;
  readonly state: SettableStateSource;
  readonly proxy: MailProxy;
  readonly ports: { imap: number; pop3: number; imaps: number; pop3s: number };
  setHealth(h: HealthView): void;
  /** Everything the proxies logged (JSON lines), to check that no credential is ever written. */
  logText(): string;
  /** Another proxy over the same state, directory and certificates (other policy or limits); stopped with the world. */
  extraProxy(o: Partial<Pick<MailProxyOptions, "limits" | "policy" | "backendCa" | "listeners" | "forwardClientAddress">>): Promise<MailProxy>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  readonly messages?: { readonly alice?: readonly Buffer[]; readonly bob?: readonly Buffer[] };
  readonly proxy?: Partial<Pick<MailProxyOptions, "limits" | "policy" | "backendCa">>;
  readonly dovecotProcessLimit?: number;
}

export async function startMailWorld(opts: WorldOptions = {}): Promise<MailWorld> {
  const dir = mkdtempSync(join(tmpdir(), "cas-mail-"));
  const certs = makeTestCerts(join(dir, "certs"));
  const aliceMsgs = opts.messages?.alice ?? [makeMessage(1, 300), makeMessage(2, 5000), makeMessage(3, 100)];
  const bobMsgs = opts.messages?.bob ?? [makeMessage(11, 2000), makeMessage(12, 70_000)];
  const limit = opts.dovecotProcessLimit ? { processLimit: opts.dovecotProcessLimit } : {};
  const east = await startDovecot({ dir: join(dir, "east"), name: "east", tls: certs, users: [{ ...USERS.alice, messages: aliceMsgs }], ...limit });
  const west = await startDovecot({
    dir: join(dir, "west"),
    name: "west",
    tls: certs,
    users: [
      { ...USERS.bob, messages: bobMsgs },
      { ...USERS.carol, messages: [makeMessage(21, 400)] },
      { ...USERS.dave, messages: [] },
    ],
    ...limit,
  });
  const topology = mailTopology({ east, west, northImapPort: await freePort(), northPop3Port: await freePort() });
  const state = new SettableStateSource({ topology, health: ALL_HEALTHY, version: `${topology.version}/0` });
  const logLines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (l: string) => void logLines.push(l) });
  const directory = parseCsvDirectory(DIRECTORY_CSV, "mailboxes.csv");
  const base = {
    tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    state,
    directory,
    decide,
    identityCandidates,
    logger,
  };
  const extras: MailProxy[] = [];
  const proxy = new MailProxy({
    listeners: [
      { protocol: "Imap4", port: 0, frontDoorHost: "east.contoso.test", name: "imap" },
      { protocol: "Pop3", port: 0, frontDoorHost: "east.contoso.test", name: "pop3" },
      { protocol: "Imap4", port: 0, implicitTls: true, frontDoorHost: "east.contoso.test", name: "imaps" },
      { protocol: "Pop3", port: 0, implicitTls: true, frontDoorHost: "east.contoso.test", name: "pop3s" },
    ],
    ...base,
    backendCa: opts.proxy && "backendCa" in opts.proxy ? opts.proxy.backendCa : certs.ca,
    ...(opts.proxy?.limits ? { limits: opts.proxy.limits } : {}),
    ...(opts.proxy?.policy ? { policy: opts.proxy.policy } : {}),
  });
  const bound = await proxy.start();
  const port = (name: string) => bound.find((b) => b.name === name)!.port;
  let gen = 0;
  return {
    dir,
    certs,
    east,
    west,
    topology,
    state,
    proxy,
    ports: { imap: port("imap"), pop3: port("pop3"), imaps: port("imaps"), pop3s: port("pop3s") },
    setHealth(h: HealthView) {
      state.set({ topology, health: h, version: `${topology.version}/${++gen}` });
    },
    logText: () => logLines.join(""),
    async extraProxy(o) {
      const p = new MailProxy({
        listeners: [
          { protocol: "Imap4", port: 0, frontDoorHost: "east.contoso.test", name: "imap" },
          { protocol: "Pop3", port: 0, frontDoorHost: "east.contoso.test", name: "pop3" },
        ],
        ...base,
        backendCa: certs.ca,
        ...o,
      });
      await p.start();
      extras.push(p);
      return p;
    },
    async stop() {
      for (const p of extras) await p.stop();
      await proxy.stop();
      await Promise.all([east.stop(), west.stop()]);
      removeDir(dir);
    },
  };
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a program (curl, python3) with a time limit; never throws. */
export function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: "buffer" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: stdout.toString("latin1"), stderr: stderr.toString("utf8") });
    });
  });
}

export const CLIENT_PY = join(import.meta.dirname, "client.py");
/** Debian's python3 (scripts/test-deps.txt): starts far faster than a pyenv shim. */
export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export interface PyResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly sha256?: string[];
  readonly sizes?: number[];
  readonly capabilities?: string[];
}

export async function pyClient(
  proto: "imap" | "pop3",
  port: number,
  mode: "plain" | "starttls" | "ssl",
  user: string,
  password: string,
  cafile?: string,
): Promise<PyResult> {
  const r = await run(PYTHON, [CLIENT_PY, proto, "127.0.0.1", String(port), mode, user, password, ...(cafile ? [cafile] : [])]);
  try {
    return JSON.parse(r.stdout) as PyResult;
  } catch {
    return { ok: false, error: `client.py exit ${r.code}: ${r.stderr.slice(-500)}` };
  }
}
