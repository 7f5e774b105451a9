// A socket read line by line (and literal by literal) while a mail session is before
// authentication, with the line-length, idle and total-time limits enforced in one place; it can
// be upgraded to TLS (STARTTLS/STLS, both as server and as client) and finally released as a raw
// stream plus the bytes already read, for the byte relay.
import type { Duplex } from "node:stream";
import { TLSSocket, connect as tlsConnect, type ConnectionOptions, type SecureContext } from "node:tls";

export type ReadFailure = "closed" | "idle" | "deadline" | "too-long";

export class ReadError extends Error {
  constructor(readonly reason: ReadFailure) {
    super(`read failed: ${reason}`);
    this.name = "ReadError";
  }
}

export interface ConnectionLimits {
  readonly maxLineLength: number;
  /** 0 = no idle timeout. */
  readonly idleMs: number;
  /** Absolute time (Date.now()) after which reads fail with "deadline"; 0 = none. */
  readonly deadline: number;
}

type Waiter = { kind: "line" } | { kind: "bytes"; n: number };

/**
 * Most bytes held for a client that are not asked for yet (e.g. while the backend answers the
 * replayed login): past it the socket is paused, so TCP pushes back on the client instead of the
 * proxy buffering without limit (issue 20: one connection pushed 29 MB in 12 s, four took RSS from
 * 192 to 437 MB). A literal being read may need more: it gets exactly what it asked for.
 */
export const MAX_UNREAD_BYTES = 64 * 1024;

/** Why a guarded connection (before authentication) is closed whatever it is doing: see guardPreAuth. */
export type PreAuthLimit = "pre_auth_bytes" | "deadline";

export class LineConnection {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private waiter: { w: Waiter; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private guard: { readonly onLimit: (limit: PreAuthLimit) => void; readonly maxUnread: number; timer: NodeJS.Timeout | undefined } | undefined;
  private readonly onData = (d: Buffer) => {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    this.pump();
    const need = this.waiter?.w.kind === "bytes" ? this.waiter.w.n : 0;
    if (this.guard) {
      // Before authentication, more than the bound is not held back but refused (guardPreAuth); the
      // socket keeps flowing up to it, so a client past it is seen (at most one more read held).
      if (this.buf.length > Math.max(this.guard.maxUnread, need)) {
        this.socket.pause();
        this.trip("pre_auth_bytes");
      }
    } else if (this.buf.length >= Math.max(MAX_UNREAD_BYTES, need)) this.socket.pause();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.pump();
  };

  constructor(
    public socket: Duplex,
    public limits: ConnectionLimits,
    /** Bytes already read off the socket (after a PROXY protocol header). */
    initial?: Buffer,
  ) {
    if (initial?.length) this.buf = initial;
    this.attach();
    socket.resume();
  }

  /**
   * Before authentication the connection is bounded whatever the session is doing (reading a
   * command, or waiting for the mailbox server to answer the replayed login): `onLimit` is called
   * once when the client has sent more than `maxUnread` bytes that nothing asked for
   * ("pre_auth_bytes"), or when `limits.deadline` passes while no read is pending ("deadline"; a
   * pending read fails with ReadError("deadline") instead, as before). The session answers with
   * its protocol's error (IMAP `* BYE`, POP3 `-ERR`) and closes. release() ends the guard.
   */
  guardPreAuth(onLimit: (limit: PreAuthLimit) => void, maxUnread = MAX_UNREAD_BYTES): void {
    this.unguard();
    const g: NonNullable<LineConnection["guard"]> = { onLimit, maxUnread, timer: undefined };
    this.guard = g;
    if (this.limits.deadline > 0) g.timer = setTimeout(() => this.trip("deadline"), Math.max(0, this.limits.deadline - Date.now()));
    if (this.buf.length > maxUnread) queueMicrotask(() => this.trip("pre_auth_bytes"));
  }

  private unguard(): void {
    if (this.guard?.timer) clearTimeout(this.guard.timer);
    this.guard = undefined;
  }

  private trip(limit: PreAuthLimit): void {
    const g = this.guard;
    if (!g) return;
    // A read that is waiting reports the deadline itself (ReadError), through the session's usual path.
    if (limit === "deadline" && this.waiter) return this.fail("deadline");
    this.unguard();
    g.onLimit(limit);
  }

  get tls(): boolean {
    return this.socket instanceof TLSSocket;
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return this.buf.length;
  }

  private attach(): void {
    this.socket.on("data", this.onData);
    this.socket.on("end", this.onEnd);
    this.socket.on("close", this.onEnd);
    this.socket.on("error", this.onEnd);
  }

  private detach(): void {
    this.socket.pause();
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.off("error", this.onEnd);
  }

  /** Next line without its CRLF (a bare LF is accepted too). */
  readLine(): Promise<Buffer> {
    return this.wait({ kind: "line" });
  }

  /** Exactly n bytes (an IMAP literal). */
  readBytes(n: number): Promise<Buffer> {
    return this.wait({ kind: "bytes", n });
  }

  private wait(w: Waiter): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error("concurrent read"));
    return new Promise<Buffer>((resolve, reject) => {
      this.waiter = { w, resolve, reject };
      this.armTimers();
      this.pump();
      // Still waiting: take more from the client (paused while nothing was asked for).
      if (this.waiter && this.socket.isPaused()) this.socket.resume();
    });
  }

  private armTimers(): void {
    this.clearTimers();
    if (this.limits.idleMs > 0) this.idleTimer = setTimeout(() => this.fail("idle"), this.limits.idleMs);
    if (this.limits.deadline > 0) {
      const left = this.limits.deadline - Date.now();
      if (left <= 0) {
        queueMicrotask(() => this.fail("deadline"));
      } else {
        this.deadlineTimer = setTimeout(() => this.fail("deadline"), left);
      }
    }
  }

  private clearTimers(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.idleTimer = this.deadlineTimer = undefined;
  }

  private fail(reason: ReadFailure): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    this.clearTimers();
    w.reject(new ReadError(reason));
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    if (w.w.kind === "line") {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0 && nl + 1 <= this.limits.maxLineLength) {
        const end = nl > 0 && this.buf[nl - 1] === 0x0d ? nl - 1 : nl;
        const line = this.buf.subarray(0, end);
        this.buf = this.buf.subarray(nl + 1);
        return this.succeed(Buffer.from(line));
      }
      if ((nl < 0 && this.buf.length >= this.limits.maxLineLength) || nl + 1 > this.limits.maxLineLength) {
        return this.fail("too-long");
      }
    } else if (this.buf.length >= w.w.n) {
      const out = Buffer.from(this.buf.subarray(0, w.w.n));
      this.buf = this.buf.subarray(w.w.n);
      return this.succeed(out);
    }
    if (this.ended) this.fail("closed");
    else if (this.buf.length > 0 && this.idleTimer && this.limits.idleMs > 0) {
      // Data is arriving: the connection is not idle (the total deadline still applies).
      this.idleTimer.refresh();
    }
  }

  private succeed(b: Buffer): void {
    const w = this.waiter;
    this.waiter = undefined;
    this.clearTimers();
    w?.resolve(b);
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }

  /** Write, then half-close and let the socket go once the data is flushed (with a safety timer). */
  endWith(data?: string | Buffer): void {
    const s = this.socket;
    this.clearTimers();
    this.unguard();
    if (s.destroyed) return;
    if (data !== undefined && s.writable) s.end(data);
    else s.end();
    setTimeout(() => s.destroy(), 2_000).unref();
  }

  destroy(): void {
    this.clearTimers();
    this.unguard();
    this.socket.destroy();
  }

  /**
   * Server-side STARTTLS/STLS. Bytes the client sent after the command in the clear are dropped
   * (they must not be taken as if they came over TLS: the STARTTLS command-injection attack).
   */
  async upgradeToServerTls(secureContext: SecureContext): Promise<{ droppedBytes: number; servername?: string }> {
    const dropped = this.buf.length;
    this.buf = Buffer.alloc(0);
    this.detach();
    const raw = this.socket;
    raw.on("error", () => undefined); // errors surface on the TLS socket; an unhandled one would crash
    const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext, requestCert: false });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new ReadError("idle")), Math.max(this.limits.idleMs, 1_000));
      tlsSocket.once("secure", () => {
        clearTimeout(t);
        resolve();
      });
      tlsSocket.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
      tlsSocket.once("close", () => {
        clearTimeout(t);
        reject(new ReadError("closed"));
      });
    });
    this.socket = tlsSocket;
    this.ended = false;
    this.attach();
    const sni = (tlsSocket as TLSSocket & { servername?: string | false }).servername;
    return { droppedBytes: dropped, ...(typeof sni === "string" && sni ? { servername: sni } : {}) };
  }

  /** Client-side STARTTLS/STLS towards a mailbox server. */
  async upgradeToClientTls(options: ConnectionOptions): Promise<void> {
    this.buf = Buffer.alloc(0);
    this.detach();
    this.socket.on("error", () => undefined);
    const tlsSocket = tlsConnect({ ...options, socket: this.socket });
    await secureConnected(tlsSocket, this.limits.idleMs || 15_000);
    this.socket = tlsSocket;
    this.ended = false;
    this.attach();
  }

  /** Stop reading lines; hand over the stream and whatever was read but not consumed. */
  release(): { socket: Duplex; leftover: Buffer } {
    this.clearTimers();
    this.unguard();
    this.detach();
    const leftover = this.buf;
    this.buf = Buffer.alloc(0);
    return { socket: this.socket, leftover };
  }
}

export function secureConnected(s: TLSSocket, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error("TLS handshake timed out"));
    }, timeoutMs);
    s.once("secureConnect", () => {
      clearTimeout(t);
      resolve();
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
