// A raw TCP/TLS client for protocol-level tests: send bytes, wait for a pattern, see the close.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

export class RawClient {
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(public socket: Socket | TLSSocket) {
    let done!: () => void;
    this.closedPromise = new Promise((r) => (done = r));
    this.listen(socket, done);
  }

  private listen(s: Socket | TLSSocket, done?: () => void): void {
    s.on("data", (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    s.on("error", () => undefined);
    s.on("close", () => {
      this.closed = true;
      this.wake();
      done?.();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async connect(port: number, tls?: { ca: string; servername?: string }): Promise<RawClient> {
    const s = tls
      ? tlsConnect({ host: "127.0.0.1", port, ca: tls.ca, servername: tls.servername ?? "localhost" })
      : netConnect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      s.once(tls ? "secureConnect" : "connect", () => resolve());
      s.once("error", reject);
    });
    return new RawClient(s);
  }

  /** Everything received so far, as text. */
  get text(): string {
    return this.data.toString("utf8");
  }

  send(d: string | Buffer): void {
    this.socket.write(d);
  }

  /** Wait until the received text matches, or fail after timeoutMs (tests stay bounded). */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      if (this.closed) throw new Error(`closed before ${re}; got: ${JSON.stringify(this.text.slice(-500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await Promise.race([
      this.closedPromise,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`not closed in ${timeoutMs} ms; got: ${JSON.stringify(this.text.slice(-300))}`)), timeoutMs)),
    ]);
  }

  /** Switch to TLS on this connection (after STARTTLS/STLS was accepted). */
  async startTls(ca: string): Promise<void> {
    const s = tlsConnect({ socket: this.socket as Socket, ca, servername: "localhost" });
    await new Promise<void>((resolve, reject) => {
      s.once("secureConnect", () => resolve());
      s.once("error", reject);
    });
    this.socket.removeAllListeners("data");
    this.data = Buffer.alloc(0);
    this.socket = s;
    this.listen(s);
  }

  clear(): void {
    this.data = Buffer.alloc(0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
