// A buffered destination for the sidecar's pino logger: each decision line is encoded straight into
// a 64 KiB buffer and the buffer is written (when full, or 100 ms after its first line) with one
// write(2), in order.
// Why not sonic-boom's asynchronous mode: it measures the whole pending buffer with
// Buffer.byteLength on every line and re-encodes it after each write, ~5 µs per line at the
// sidecar's rates, more than the decision itself. Writes here are synchronous but rare, so nothing
// is ever in flight: flushSync() at exit writes every remaining line, in order.
import { closeSync, openSync, writeSync } from "node:fs";

export interface BufferedDestinationOptions {
  /** Batch size: written once this many bytes could be pending. */
  readonly bufferBytes?: number;
  /** Longest a line waits before it is written. */
  readonly flushMs?: number;
}

export class BufferedDestination {
  private buf: Buffer;
  private used = 0;
  /** Bytes of an earlier batch the fd would not take yet (EAGAIN on a non-blocking pipe). */
  private carry: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushMs: number;
  private readonly ownsFd: boolean;
  private readonly fd: number;
  private failed = false;
  private readonly onExit = () => this.flushSync();

  /** `dest`: a file descriptor (1 = stdout) or a file path (appended to). */
  constructor(dest: number | string, opts: BufferedDestinationOptions = {}) {
    this.fd = typeof dest === "number" ? dest : openSync(dest, "a");
    this.ownsFd = typeof dest !== "number";
    this.buf = Buffer.allocUnsafe(opts.bufferBytes ?? 64 * 1024);
    this.flushMs = opts.flushMs ?? 100;
    process.on("exit", this.onExit);
  }

  write(line: string): boolean {
    // A UTF-16 code unit is at most 3 UTF-8 bytes: flush first unless the line surely fits.
    if (this.used + line.length * 3 > this.buf.length) {
      this.flushSync();
      if (line.length * 3 > this.buf.length) {
        this.writeOut(Buffer.from(line, "utf8"));
        return true;
      }
    }
    this.used += this.buf.write(line, this.used, "utf8");
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushSync();
      }, this.flushMs);
      this.timer.unref();
    }
    return true;
  }

  /** pino's logger.flush(cb) calls this. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** Write everything pending now. Never throws: a failing fd is reported once on stderr. */
  flushSync(): void {
    if (this.used === 0 && !this.carry) return;
    // The pending bytes are copied out only when a carry must be kept; otherwise written in place.
    const pending = this.buf.subarray(0, this.used);
    this.used = 0;
    this.writeOut(pending);
  }

  private writeOut(data: Buffer): void {
    let buf = data;
    if (this.carry) {
      buf = Buffer.concat([this.carry, data]);
      this.carry = undefined;
    }
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        // The reader is slow: keep the rest (bounded, copied: the buffer is reused) and retry later.
        this.carry = Buffer.from(buf.subarray(off, off + Math.min(buf.length - off, 16 * 1024 * 1024)));
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.flushSync();
          }, this.flushMs);
          this.timer.unref();
        }
      } else if (!this.failed) {
        this.failed = true;
        process.stderr.write(`cas-sidecar: log destination write failed: ${String(err)}\n`);
      }
    }
  }

  end(): void {
    this.flushSync();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    process.off("exit", this.onExit);
    if (this.ownsFd) closeSync(this.fd);
  }
}
