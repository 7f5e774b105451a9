// After authentication: bytes both ways with backpressure until either side closes; then the other
// side is closed too. Client to server (commands) and TLS mailbox connections go through
// stream.pipe (it pauses the reader when the writer's buffer is full). Server to client over a
// plain-TCP mailbox connection (the bulk of a fetch) reads into pooled, reused buffers
// (reused-buffer.ts) and writes each read straight to the client: no allocation, no per-chunk
// stream machinery; the reader is paused whenever a write cannot complete at once, until it has,
// and the buffers go back to the pool once both sockets have closed.
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { redirectReads, type RedirectedReads } from "./reused-buffer.js";

export interface RelayResult {
  readonly clientToServer: number;
  readonly serverToClient: number;
}

function keepAlive(s: Duplex): void {
  if (s instanceof Socket || s instanceof TLSSocket) {
    s.setKeepAlive(true, 60_000);
    s.setNoDelay(true);
  }
}

/** Bytes received on the socket (for TLS, the encrypted bytes on the wire). */
function bytesRead(s: Duplex): number {
  return s instanceof Socket ? s.bytesRead : 0;
}

export function relay(client: Duplex, clientLeftover: Buffer, server: Duplex, serverLeftover: Buffer): Promise<RelayResult> {
  return new Promise((resolve) => {
    // Bytes are counted from the sockets' own counters at the end: no per-chunk work in the relay.
    const read0 = { client: bytesRead(client), server: bytesRead(server) };
    let finished = false;
    let pooled: RedirectedReads | undefined;
    const totals = (): RelayResult => ({
      clientToServer: clientLeftover.length + bytesRead(client) - read0.client,
      serverToClient: serverLeftover.length + bytesRead(server) - read0.server,
    });
    keepAlive(client);
    keepAlive(server);
    const done = () => {
      if (finished) return;
      finished = true;
      // Whichever side went first, the other goes too: a little later, so what is buffered is flushed.
      const t = setTimeout(() => {
        client.destroy();
        server.destroy();
      }, 5_000);
      t.unref();
      client.end();
      server.end();
      let closed = 0;
      const both = () => {
        if (++closed === 2) {
          clearTimeout(t);
          // Both closed: any write still pending was cancelled; nothing refers to the buffers now.
          pooled?.finish();
          resolve(totals());
        }
      };
      if (client.destroyed) both();
      else client.once("close", both);
      if (server.destroyed) both();
      else server.once("close", both);
    };
    client.on("error", () => {
      server.destroy();
      done();
    });
    server.on("error", () => {
      client.destroy();
      done();
    });
    client.on("close", done);
    server.on("close", done);
    client.on("end", done);
    server.on("end", done);
    if (serverLeftover.length) client.write(serverLeftover);
    if (clientLeftover.length) server.write(clientLeftover);
    client.pipe(server, { end: false });
    pooled = relayReusedBuffer(server, client);
    if (!pooled) server.pipe(client, { end: false });
    client.resume();
    server.resume();
    // A side that went away while the login was in progress will send no more events.
    if (client.destroyed || server.destroyed || client.readableEnded || server.readableEnded) done();
  });
}

/**
 * `from`'s reads (a view of its pooled buffer) are written to `to` as they come. A write that does
 * not complete at once still refers to the buffer: pause `from` until it has completed.
 */
function relayReusedBuffer(from: Duplex, to: Duplex): RedirectedReads | undefined {
  let waiting = false;
  // One function for every write: Node batches the callbacks of writes that completed at once.
  const written = () => {
    if (waiting && to.writableLength === 0) {
      waiting = false;
      reads?.released();
      from.resume();
    }
  };
  const reads = redirectReads(from, (view) => {
    if (to.destroyed || !to.writable) return false;
    to.write(view, written);
    if (to.writableLength === 0) return false;
    waiting = true;
    from.pause();
    return true;
  });
  return reads;
}
