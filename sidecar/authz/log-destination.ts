// A buffered destination for the sidecar's pino logger: one decision line per request is kept in
// memory and written in batches (at 64 KiB, or after 100 ms) with one write(2) each, in order.
// Why not sonic-boom's asynchronous mode: it measures the whole pending buffer with
// Buffer.byteLength on every line and re-encodes it after each write, ~5 µs per line at the
// sidecar's rates, more than the decision itself. Writes here are synchronous but rare, so nothing
// is ever in flight: flushSync() at exit writes every remaining line, in order.
import { closeSync, openSync, writeSync } from "node:fs";

export interface BufferedDestinationOptions {
  /** Write once this many characters are pending. */
  readonly highWaterChars?: number;
  /** Longest a line waits before it is written. */
  readonly flushMs?: number;
}

export class BufferedDestination {
  private chunks: string[] = [];
  private pending = 0;
  /** Bytes of an earlier batch the fd would not take yet (EAGAIN on a non-blocking pipe). */
  private carry: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly high: number;
  private readonly flushMs: number;
  private readonly ownsFd: boolean;
  private readonly fd: number;
  private failed = false;
  private readonly onExit = () => this.flushSync();

  /** `dest`: a file descriptor (1 = stdout) or a file path (appended to). */
  constructor(dest: number | string, opts: BufferedDestinationOptions = {}) {
    this.fd = typeof dest === "number" ? dest : openSync(dest, "a");
    this.ownsFd = typeof dest !== "number";
    this.high = opts.highWaterChars ?? 64 * 1024;
    this.flushMs = opts.flushMs ?? 100;
    process.on("exit", this.onExit);
  }

  write(line: string): boolean {
    this.chunks.push(line);
    this.pending += line.length;
    if (this.pending >= this.high) this.flushSync();
    else if (!this.timer) {
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
    if (this.pending === 0 && !this.carry) return;
    let buf = this.pending ? Buffer.from(this.chunks.join(""), "utf8") : Buffer.alloc(0);
    this.chunks = [];
    this.pending = 0;
    if (this.carry) {
      buf = Buffer.concat([this.carry, buf]);
      this.carry = undefined;
    }
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        // The reader is slow: keep the rest (bounded) and try again on the next flush.
        this.carry = buf.subarray(off, off + Math.min(buf.length - off, 16 * 1024 * 1024));
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
