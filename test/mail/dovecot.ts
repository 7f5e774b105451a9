// Starts a real Dovecot (Debian dovecot-imapd + dovecot-pop3d) in a temporary directory, as the
// mailbox server of one test site: its own config, passwd-file users, Maildirs, loopback ports and
// (optionally) a TLS certificate. Nothing outside the directory is touched; stop() ends it.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const DOVECOT_BIN = "/usr/sbin/dovecot";
/** Dovecot is installed, and we are root (it is started as root and the Maildirs are chowned to nobody). */
export const dovecotAvailable = (): boolean => existsSync(DOVECOT_BIN) && process.getuid?.() === 0;

export interface DovecotUser {
  readonly user: string;
  readonly password: string;
  /** RFC 5322 messages put in the INBOX, in order. */
  readonly messages: readonly Buffer[];
}

export interface DovecotOptions {
  readonly dir: string;
  readonly name: string;
  readonly users: readonly DovecotUser[];
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Dovecot's own pre-login limit (default 1000, high enough for the benchmark). */
  readonly processLimit?: number;
}

export interface Dovecot {
  readonly dir: string;
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly pop3Port: number;
  readonly pop3sPort: number;
  /** The Dovecot master process (its children are the login and mail processes). */
  readonly pid: number;
  /** The messages Dovecot holds for a user, as files (what the checksums are compared with). */
  maildirMessages(user: string): Buffer[];
  stop(): Promise<void>;
}

// Mail is stored as nobody:nogroup; Dovecot refuses root as the mail user.
const MAIL_UID = 65534;
const MAIL_GID = 65534;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true });
  // The login processes run as dovenull and chroot under base_dir: every parent must be traversable.
  for (let d = dir; d.startsWith(tmpdir() + "/") ; d = dirname(d)) chmodSync(d, statSync(d).mode | 0o055);
  for (const d of ["run", "state", "mail"]) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  chownSync(join(dir, "mail"), MAIL_UID, MAIL_GID);

  const passwd = opts.users.map((u) => `${u.user}:{PLAIN}${u.password}::::::`).join("\n") + "\n";
  writeFileSync(join(dir, "users"), passwd, { mode: 0o644 }); // test passwords; read by the auth worker (user dovecot)

  for (const u of opts.users) {
    const md = join(dir, "mail", u.user, "Maildir");
    for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(md, sub), { recursive: true });
    u.messages.forEach((m, i) => {
      const name = `${1_700_000_000 + i}.M${i}P1.cas-test,S=${m.length}:2,`;
      writeFileSync(join(md, "cur", name), m);
    });
    chownTree(join(dir, "mail", u.user));
  }

  // Dovecot binds its listeners itself, so a port found free can be taken before it starts (by a
  // client's outgoing connection, or another test file's listener: CI saw "dovecot east exited" and
  // Dovecot's "listen(127.0.0.1, N) failed: Address already in use"). Ports are picked below the
  // ephemeral range (where outgoing connections and port-0 listeners get theirs), and a start that
  // loses a port anyway is retried with fresh ones.
  const processLimit = opts.processLimit ?? 1000;
  for (let attempt = 1; ; attempt++) {
    const [imapPort, imapsPort, pop3Port, pop3sPort] = await listenablePorts(4);
    const ports = { imapPort, imapsPort, pop3Port, pop3sPort };
    const confFile = join(dir, "dovecot.conf");
    writeFileSync(confFile, dovecotConf(opts, ports, processLimit));
    rmSync(join(dir, "dovecot.log"), { force: true });
    const r = await spawnDovecot(confFile, dir, opts.name, ports);
    if ("child" in r) return handle(dir, r, ports);
    if (!/Address already in use/.test(r.error) || attempt >= 5) throw new Error(`dovecot ${opts.name} exited: ${r.error}`);
  }
}

interface Ports {
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly pop3Port: number;
  readonly pop3sPort: number;
}

function dovecotConf(opts: DovecotOptions, { imapPort, imapsPort, pop3Port, pop3sPort }: Ports, processLimit: number): string {
  const dir = opts.dir;
  const ssl = opts.tls
    ? `ssl = yes\nssl_cert = <${opts.tls.certFile}\nssl_key = <${opts.tls.keyFile}\nssl_min_protocol = TLSv1.2\n`
    : "ssl = no\n";
  // Auth and anvil serve every login process (imap-login, pop3-login, imap-urlauth-login: up to
  // processLimit each); below that doveconf warns at every start, which hid the real error in CI.
  const authClients = processLimit * 3 + 10;
  return `# cas-gateway test back end "${opts.name}" (generated)
instance_name = cas-test-${opts.name}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
shutdown_clients = yes
${ssl}disable_plaintext_auth = no
# The proxy may tell who the client is (IMAP ID x-originating-ip, POP3 XCLIENT).
login_trusted_networks = 127.0.0.1/32
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_uid = ${MAIL_UID}
mail_gid = ${MAIL_GID}
pop3_uidl_format = %08Xu%08Xv
default_process_limit = ${processLimit}
default_client_limit = ${Math.max(1000, processLimit * 2)}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${dir}/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${opts.tls ? imapsPort : 0}
    ssl = yes
  }
  service_count = 0
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${pop3Port}
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = ${opts.tls ? pop3sPort : 0}
    ssl = yes
  }
  service_count = 0
}
# Enough auth and anvil clients for every login process (else doveconf warns at every start).
service auth {
  client_limit = ${authClients}
}
# No per-IP auth penalty: every test client (and the proxy) comes from 127.0.0.1.
service anvil {
  client_limit = ${authClients + 10}
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
`;
}

/** Dovecot started and greeting on IMAP and POP3, or why it exited. */
async function spawnDovecot(confFile: string, dir: string, name: string, ports: Ports): Promise<{ child: ChildProcess; exited: () => boolean } | { error: string }> {
  const child: ChildProcess = spawn(DOVECOT_BIN, ["-F", "-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.on("exit", () => (exited = true));

  // Ready when the IMAP and POP3 listeners accept and greet.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) return { error: `${output}\n${readLog(dir)}` };
    if ((await greets(ports.imapPort)) && (await greets(ports.pop3Port))) return { child, exited: () => exited };
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`dovecot ${name} did not start in 20 s: ${output}\n${readLog(dir)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function handle(dir: string, { child, exited }: { child: ChildProcess; exited: () => boolean }, ports: Ports): Dovecot {
  return {
    dir,
    ...ports,
    pid: child.pid ?? 0,
    maildirMessages(user: string): Buffer[] {
      const cur = join(dir, "mail", user, "Maildir", "cur");
      return readdirSync(cur)
        .sort((a, b) => Number(a.split(".")[0]) - Number(b.split(".")[0]))
        .map((f) => readFileSync(join(cur, f)));
    },
    async stop(): Promise<void> {
      if (!exited()) {
        const gone = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await gone;
        clearTimeout(t);
      }
    },
  };
}

/** The first port of the kernel's ephemeral range (ports from 0-binds and outgoing connections). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

/** n distinct ports below the ephemeral range that 127.0.0.1 can listen on now (random, so parallel test files rarely pick the same). */
async function listenablePorts(n: number): Promise<number[]> {
  const high = ephemeralLow();
  const low = Math.min(10_000, high - 1000);
  const ports: number[] = [];
  for (let tries = 0; ports.length < n && tries < 1000; tries++) {
    const p = low + Math.floor(Math.random() * (high - low));
    if (!ports.includes(p) && (await canListen(p))) ports.push(p);
  }
  while (ports.length < n) ports.push(await freePort());
  return ports;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, "dovecot.log"), "utf8").slice(-4000);
  } catch {
    return "";
  }
}

function chownTree(p: string): void {
  chownSync(p, MAIL_UID, MAIL_GID);
  if (statSync(p).isDirectory()) for (const f of readdirSync(p)) chownTree(join(p, f));
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    const t = setTimeout(() => done(false), 1000);
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    s.once("data", (d: Buffer) => done(d.toString().startsWith("* OK") || d.toString().startsWith("+OK")));
    s.once("error", () => done(false));
  });
}
