// Plain-TCP connections to mailbox servers that read into one reused buffer per connection
// (net.connect `onread`) instead of a fresh 64 KiB allocation per read. Measured on the relay: the
// per-read allocations cost page faults on every chunk (fresh memory is faulted in by the kernel's
// copy) plus malloc and a shrinking copy; with one buffer the proxy's CPU per MB relayed fell by
// more than half (docs/mail-proxy.md, "Speed").
//
// Until the relay takes over, each read is copied out and emitted as an ordinary 'data' event, so
// the line reader used for the login replay works unchanged. The relay then installs a sink that
// gets a view of the buffer, valid only during the call: it must write it out synchronously or pause
// the socket until the write has completed.
import { createConnection, type Socket, type TcpNetConnectOpts } from "node:net";

/** Receives each read; the view is reused after the call returns (or after resume, if it paused). */
export type ChunkSink = (view: Buffer) => void;

const MIN_BUFFER = 16 * 1024;
/** Largest read buffer: bulk fetches read up to this much per system call. */
export const MAX_READ_BUFFER = 1024 * 1024;

const sinks = new WeakMap<Socket, { sink: ChunkSink | undefined }>();

/**
 * Connect with a reused read buffer. It starts small (idle IMAP connections stay small) and grows
 * (x4, up to MAX_READ_BUFFER) whenever a read fills it, which is what a bulk transfer does.
 */
export function connectReusingBuffer(opts: Omit<TcpNetConnectOpts, "onread">): Socket {
  let buf = Buffer.allocUnsafeSlow(MIN_BUFFER);
  let full = false;
  const slot: { sink: ChunkSink | undefined } = { sink: undefined };
  const socket: Socket = createConnection({
    ...opts,
    onread: {
      buffer: () => {
        if (full && buf.length < MAX_READ_BUFFER) buf = Buffer.allocUnsafeSlow(Math.min(buf.length * 4, MAX_READ_BUFFER));
        full = false;
        return buf;
      },
      callback: (n: number, b: Uint8Array) => {
        full = n === b.length;
        const view = Buffer.from(b.buffer, b.byteOffset, n);
        if (slot.sink) slot.sink(view);
        else socket.emit("data", Buffer.from(view)); // a copy: the line reader keeps it
        return true;
      },
    },
  });
  sinks.set(socket, slot);
  return socket;
}

/** Send this socket's reads to `sink` from now on; false if it is not a reused-buffer socket. */
export function redirectReads(socket: unknown, sink: ChunkSink): boolean {
  const slot = sinks.get(socket as Socket);
  if (!slot) return false;
  slot.sink = sink;
  return true;
}
