// A process-wide pool of read buffers by size class, for the relay's mailbox-side reads
// (reused-buffer.ts). Fresh memory costs a page fault per 4 KiB the first time the kernel copies
// into it, and a fresh 1 MiB buffer per connection also makes V8 count external memory and run
// full collections; buffers taken from the pool are already faulted in. The idle memory the pool
// keeps is bounded per size class: a buffer given back when its class is full is dropped (left to
// the garbage collector).

/** Read buffer sizes: idle connections read into the smallest, bulk transfers grow to the largest. */
export const READ_BUFFER_SIZES: readonly number[] = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024];
/** Idle bytes the process-wide pool keeps per size class (4 x 4 MiB = 16 MiB at most). */
export const IDLE_BYTES_PER_SIZE = 4 * 1024 * 1024;

export interface BufferPoolOptions {
  /** Buffer sizes, ascending. */
  readonly sizes: readonly number[];
  /** Most idle bytes kept per size. */
  readonly maxIdleBytesPerSize: number;
  /** Tests only: fill buffers with this byte when given back, so a buffer that was still in use shows up as corrupt data. */
  readonly poison?: number;
}

export interface BufferPoolStats {
  /** Buffers taken and not given back. */
  readonly lent: number;
  /** Idle buffers per size class. */
  readonly idle: readonly number[];
  readonly idleBytes: number;
  /** Buffers allocated because the class had none idle. */
  readonly allocated: number;
  /** Buffers given back to a full class and dropped. */
  readonly dropped: number;
}

export class BufferPool {
  readonly sizes: readonly number[];
  private readonly idle: Buffer[][];
  private readonly maxIdle: number[];
  private lent = 0;
  private allocated = 0;
  private dropped = 0;

  constructor(private readonly opts: BufferPoolOptions) {
    this.sizes = [...opts.sizes];
    this.idle = this.sizes.map(() => []);
    this.maxIdle = this.sizes.map((s) => Math.floor(opts.maxIdleBytesPerSize / s));
  }

  /** A buffer of size class `k` (0 = smallest); contents are whatever the last user left. */
  take(k: number): Buffer {
    this.lent++;
    const b = this.idle[k].pop();
    if (b) return b;
    this.allocated++;
    // Not from Node's shared 8 KiB slab: each buffer owns its memory, so keeping it keeps nothing else.
    return Buffer.allocUnsafeSlow(this.sizes[k]);
  }

  /** Give back a buffer from take(); the caller must no longer refer to it, nor any pending write. */
  give(b: Buffer): void {
    const k = this.sizes.indexOf(b.length);
    if (k < 0) throw new Error(`buffer of ${b.length} bytes is not from this pool`);
    this.lent--;
    if (this.opts.poison !== undefined) b.fill(this.opts.poison);
    if (this.idle[k].length < this.maxIdle[k]) this.idle[k].push(b);
    else this.dropped++;
  }

  stats(): BufferPoolStats {
    const idle = this.idle.map((l) => l.length);
    return {
      lent: this.lent,
      idle,
      idleBytes: idle.reduce((a, n, k) => a + n * this.sizes[k], 0),
      allocated: this.allocated,
      dropped: this.dropped,
    };
  }
}

/** The pool every reused-buffer connection of the process uses unless told otherwise. */
export const readBufferPool = new BufferPool({ sizes: READ_BUFFER_SIZES, maxIdleBytesPerSize: IDLE_BYTES_PER_SIZE });
