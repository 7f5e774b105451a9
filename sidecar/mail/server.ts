// The POP3/IMAP4 proxy: listeners (plain, or implicit TLS), connection limits, and one session per
// client connection. Envoy's tcp_proxy listeners forward to it (TLS for 993/995 terminated at
// Envoy); it can also be used directly.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, createServer as createTlsServer, type SecureContext, type TLSSocket } from "node:tls";
import { pino, type Logger } from "pino";
import type { MailboxDirectory } from "../../model/directory/types.js";
import type { StateSource } from "../../model/state.js";
import { MailLimits, MailListener, MailPolicy, type MailListenerInput } from "./config.js";
import { RELAY_HIGH_WATER_MARK } from "./backend.js";
import { LineConnection } from "./connection.js";
import { ImapSession } from "./imap-session.js";
import { MailLogin, type DecideFn, type IdentityCandidatesFn } from "./login.js";
import { MailMetrics } from "./metrics.js";
import { Pop3Session } from "./pop3-session.js";
import { readProxyHeader } from "./proxy-protocol.js";
import type { SessionContext } from "./session.js";

export interface MailProxyOptions {
  readonly listeners: readonly MailListenerInput[];
  readonly limits?: Partial<MailLimits>;
  readonly policy?: Partial<MailPolicy>;
  /** The gateway's certificate and key (PEM), for STARTTLS/STLS and implicit-TLS listeners. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer } | { readonly certFile: string; readonly keyFile: string };
  readonly state: StateSource;
  readonly directory: MailboxDirectory;
  readonly decide: DecideFn;
  readonly identityCandidates?: IdentityCandidatesFn;
  readonly defaultSite?: string;
  /** Deadline of the directory look-up of a login (default DEFAULT_MAIL_LOOKUP_TIMEOUT_MS). */
  readonly lookupTimeoutMs?: number;
  /** A directory that is down or misses the deadline: refuse for now (fail-closed) or let the receiving site's server answer (local). */
  readonly directoryFailurePolicy?: "fail-closed" | "local";
  /** Extra CA certificates (PEM) trusted for mailbox servers, besides the system store. */
  readonly backendCa?: string | Buffer;
  /** Tell mailbox servers the client's address (IMAP ID x-originating-ip, POP3 XCLIENT); they must trust the gateway. */
  readonly forwardClientAddress?: boolean;
  readonly logger?: Logger;
  readonly metrics?: MailMetrics;
}

export interface BoundListener {
  readonly name: string;
  readonly protocol: MailListener["protocol"];
  readonly host: string;
  readonly port: number;
  readonly implicitTls: boolean;
}

export class MailProxy {
  readonly limits: MailLimits;
  readonly policy: MailPolicy;
  readonly metrics: MailMetrics;
  private readonly listeners: MailListener[];
  private readonly log: Logger;
  private readonly login: MailLogin;
  private readonly secureContext: SecureContext | undefined;
  private readonly certKey: { cert: string | Buffer; key: string | Buffer } | undefined;
  private readonly servers: { server: Server; listener: MailListener; name: string }[] = [];
  private readonly sockets = new Set<Duplex>();
  /** Connections still sending their PROXY protocol header. */
  private readonly pending = new Set<Duplex>();
  private readonly perAddress = new Map<string, number>();
  private bound: BoundListener[] = [];

  constructor(private readonly opts: MailProxyOptions) {
    this.limits = MailLimits.parse(opts.limits ?? {});
    this.policy = MailPolicy.parse(opts.policy ?? {});
    this.listeners = opts.listeners.map((l) => MailListener.parse(l));
    this.log = opts.logger ?? pino({ level: "silent" });
    this.metrics = opts.metrics ?? new MailMetrics();
    if (opts.tls) {
      const t = "certFile" in opts.tls ? { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) } : opts.tls;
      this.secureContext = createSecureContext({ cert: t.cert, key: t.key, minVersion: "TLSv1.2" });
      this.certKey = { cert: t.cert, key: t.key };
    }
    for (const l of this.listeners) {
      if (l.implicitTls && !this.secureContext) throw new Error(`mail listener ${l.protocol} :${l.port}: implicit TLS needs a certificate (--tls-cert/--tls-key)`);
    }
    this.login = new MailLogin({
      state: opts.state,
      directory: opts.directory,
      decide: opts.decide,
      ...(opts.identityCandidates ? { identityCandidates: opts.identityCandidates } : {}),
      ...(opts.defaultSite ? { defaultSite: opts.defaultSite } : {}),
      ...(opts.lookupTimeoutMs !== undefined ? { lookupTimeoutMs: opts.lookupTimeoutMs } : {}),
      ...(opts.directoryFailurePolicy ? { directoryFailurePolicy: opts.directoryFailurePolicy } : {}),
      ...(opts.backendCa ? { backendCa: opts.backendCa } : {}),
      backendTimeoutMs: this.limits.backendTimeoutMs,
      ...(opts.forwardClientAddress ? { forwardClientAddress: true } : {}),
    });
  }

  async start(): Promise<BoundListener[]> {
    for (const l of this.listeners) {
      const name = l.name ?? `${l.protocol.toLowerCase()}${l.implicitTls ? "s" : ""}`;
      const server: Server = l.implicitTls
        ? createTlsServer({ ...this.certKey, minVersion: "TLSv1.2", handshakeTimeout: this.limits.preAuthIdleMs, highWaterMark: RELAY_HIGH_WATER_MARK }, (s: TLSSocket) =>
            this.accept(s, l, name),
          )
        : createNetServer({ highWaterMark: RELAY_HIGH_WATER_MARK }, (s: Socket) => this.accept(s, l, name));
      server.on("error", (err) => this.log.error({ err, listener: name }, "mail listener error"));
      if (l.implicitTls) server.on("tlsClientError", (err) => this.log.debug({ err: String(err), listener: name }, "TLS handshake failed"));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(l.port, l.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : l.port;
      this.servers.push({ server, listener: l, name });
      this.bound.push({ name, protocol: l.protocol, host: l.host, port, implicitTls: l.implicitTls });
      this.log.info({ listener: name, host: l.host, port, implicitTls: l.implicitTls }, "mail listener ready");
    }
    return this.bound;
  }

  addresses(): readonly BoundListener[] {
    return this.bound;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((r) => s.server.close(() => r())));
    for (const s of [...this.sockets, ...this.pending]) s.destroy();
    await Promise.all(closing);
    this.servers.length = 0;
    this.bound = [];
  }

  private accept(socket: Socket | TLSSocket, l: MailListener, name: string): void {
    if (!l.proxyProtocol) return this.open(socket, l, name, socket.remoteAddress ?? "");
    socket.on("error", () => undefined);
    this.pending.add(socket);
    readProxyHeader(socket, this.limits.preAuthIdleMs).then(
      (h) => {
        this.pending.delete(socket);
        this.open(socket, l, name, h.sourceAddress ?? socket.remoteAddress ?? "", h.leftover);
      },
      (err: unknown) => {
        this.pending.delete(socket);
        this.metrics.limits.inc({ protocol: l.protocol, limit: "proxy_protocol" });
        this.log.warn({ listener: name, peer: socket.remoteAddress, err: String(err) }, "bad or missing PROXY protocol header");
        socket.destroy();
      },
    );
  }

  private open(socket: Socket | TLSSocket, l: MailListener, name: string, address: string, initial?: Buffer): void {
    const protocol = l.protocol;
    const log = this.log.child({ conn: randomUUID(), protocol, listener: name, client: address });
    socket.on("error", (err) => log.debug({ err: String(err) }, "client socket error"));
    this.metrics.connections.inc({ protocol, listener: name });

    const overLimit =
      this.sockets.size >= this.limits.maxConnections
        ? "connections"
        : this.limits.maxConnectionsPerAddress > 0 && (this.perAddress.get(address) ?? 0) >= this.limits.maxConnectionsPerAddress
          ? "connections_per_address"
          : undefined;
    if (overLimit) {
      this.metrics.limits.inc({ protocol, limit: overLimit });
      log.warn({ event: "refused", limit: overLimit }, "too many connections");
      socket.end(protocol === "Imap4" ? "* BYE [UNAVAILABLE] Too many connections; try again later.\r\n" : "-ERR [SYS/TEMP] Too many connections; try again later.\r\n");
      setTimeout(() => socket.destroy(), 2_000).unref();
      return;
    }

    this.sockets.add(socket);
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.metrics.active.inc({ protocol });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.sockets.delete(socket);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
      this.metrics.active.dec({ protocol });
    };
    socket.once("close", release);
    socket.setNoDelay(true);

    const conn = new LineConnection(
      socket,
      {
        maxLineLength: this.limits.maxLineLength,
        idleMs: this.limits.preAuthIdleMs,
        deadline: Date.now() + this.limits.preAuthTotalMs,
      },
      initial,
    );
    const state = this.opts.state;
    const ctx: SessionContext = {
      conn,
      listener: l,
      limits: this.limits,
      policy: this.policy,
      ...(this.secureContext ? { secureContext: this.secureContext } : {}),
      login: this.login,
      metrics: this.metrics,
      log,
      ...(address ? { sourceAddress: address } : {}),
      frontDoorHost: (servername?: string) => {
        // SNI names the front door when it is one of the organisation's host names.
        if (servername && state.current()?.topology.siteForHost(servername)) return servername;
        return l.frontDoorHost ?? servername ?? "";
      },
    };
    const session = protocol === "Imap4" ? new ImapSession(ctx) : new Pop3Session(ctx);
    log.debug({ event: "connected" }, "mail client connected");
    session.run().catch((err: unknown) => {
      log.error({ err }, "mail session crashed");
      conn.destroy();
    });
  }
}
