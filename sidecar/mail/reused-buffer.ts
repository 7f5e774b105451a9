// Plain-TCP connections to mailbox servers that read into pooled, reused buffers (net.connect
// `onread`) instead of a fresh 64 KiB allocation per read. Per-read allocations cost page faults
// on every chunk (fresh memory is faulted in by the kernel's copy) plus malloc and a shrinking
// copy; fresh per-connection buffers cost the same once per connection, so the buffers come from a
// process-wide pool by size class (buffer-pool.ts; docs/mail-proxy.md, "Speed").
//
// A connection reads into a 16 KiB buffer, moves up a size (x4, up to 1 MiB) when a read fills its
// buffer, and after a read that did not moves down to the smallest size at least 4 times that read;
// the buffer it leaves goes back to the pool. So a connection holds a large buffer only while its
// reads are large: at most 4x its last read, or 16 KiB.
//
// Until the relay takes over, each read is copied out and emitted as an ordinary 'data' event, so
// the line reader used for the login replay works unchanged. The relay then installs a sink that
// gets a view of the buffer; the sink says whether the view is still referenced after the call (a
// write that did not complete at once). While it is, the sink keeps the socket paused and the
// buffer is not given back or read into; the relay calls released() when the write has completed
// and finish() once both of its sockets have closed (only then can no write refer to a buffer).
import { createConnection, type Socket, type TcpNetConnectOpts } from "node:net";
import { readBufferPool, type BufferPool } from "./buffer-pool.js";

/**
 * Receives each read. Returns true if the view is still referenced after the call (a pending
 * write); the socket must then stay paused until RedirectedReads.released() has been called.
 */
export type ChunkSink = (view: Buffer) => boolean;

export interface RedirectedReads {
  /** The view last handed to the sink is no longer referenced: its write has completed. */
  released(): void;
  /** Both ends of the relay have closed; the buffers go back to the pool. */
  finish(): void;
}

/** One connection's read buffers (exported for the tests, which drive it as Node does). */
export class PooledReads implements RedirectedReads {
  /** Set when a relay takes the reads over (redirectReads); it then gives the buffers back. */
  sink: ChunkSink | undefined;
  private k = 0;
  private cur: Buffer;
  /** The buffer a class change left while a write still referred to it. */
  private retired: Buffer | undefined;
  private finished = false;
  /** Set right after connect (Node asks for the first buffer while the socket is being made). */
  socket: Socket | undefined;

  constructor(private readonly pool: BufferPool) {
    this.cur = pool.take(0);
  }

  /** onread.buffer: Node calls it after every read; what it returns is read into next. */
  readonly buffer = (): Buffer => this.cur;

  /** onread.callback: `b` is the buffer last returned by `buffer`. */
  readonly callback = (n: number, b: Uint8Array): boolean => {
    const view = Buffer.from(b.buffer, b.byteOffset, n);
    let held = false;
    if (this.sink) held = this.sink(view);
    else this.socket?.emit("data", Buffer.from(view)); // a copy: the line reader keeps it
    if (!this.finished) this.resize(n, held);
    return true;
  };

  private resize(n: number, held: boolean): void {
    const sizes = this.pool.sizes;
    let k = this.k;
    if (n === sizes[k]) {
      if (k < sizes.length - 1) k++;
    } else {
      // Down to the smallest size at least 4x this read: a bulk transfer whose reads are smaller
      // than its buffer (the sender is slower than this side) keeps room for the next burst,
      // while a protocol reply (< 4 KiB) goes straight back to the smallest size.
      while (k > 0 && sizes[k - 1] >= 4 * n) k--;
    }
    // A second change while the first left buffer is still referenced would need a second slot;
    // cannot happen (the sink pauses until released()), but stay on the current buffer if it does.
    if (k === this.k || (held && this.retired)) return;
    if (held) this.retired = this.cur;
    else this.pool.give(this.cur);
    this.k = k;
    this.cur = this.pool.take(k);
  }

  released(): void {
    if (this.retired && !this.finished) this.pool.give(this.retired);
    this.retired = undefined;
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.pool.give(this.cur);
    if (this.retired) this.pool.give(this.retired);
    this.retired = undefined;
  }
}

const reads = new WeakMap<Socket, PooledReads>();

/** Connect, reading into buffers from `pool` (the process-wide one by default). */
export function connectReusingBuffer(opts: Omit<TcpNetConnectOpts, "onread">, pool: BufferPool = readBufferPool): Socket {
  const r = new PooledReads(pool);
  const socket: Socket = createConnection({ ...opts, onread: { buffer: r.buffer, callback: r.callback } });
  r.socket = socket;
  // Not handed to a relay: nothing but this socket used the buffer (reads were copied out).
  socket.once("close", () => {
    if (!r.sink) r.finish();
  });
  reads.set(socket, r);
  return socket;
}

/** Send this socket's reads to `sink` from now on; undefined if it is not a pooled-buffer socket. */
export function redirectReads(socket: unknown, sink: ChunkSink): RedirectedReads | undefined {
  const r = reads.get(socket as Socket);
  if (!r) return undefined;
  r.sink = sink;
  return r;
}
