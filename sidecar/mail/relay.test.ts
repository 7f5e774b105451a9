// The byte relay over a pooled-buffer mailbox connection: every byte arrives, in order, when the
// client reads slowly (writes then cannot complete at once, so the reader must pause until they
// have) and when it reads fast; the line reader before the hand-off sees copies of the reads. The
// read buffers come from a pool: a buffer a pending write refers to is never given back (the test
// pools overwrite every buffer given back, so one given back too early shows up as corrupt bytes),
// every buffer is given back when a relay ends, and the pool keeps no more than its bound.
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BufferPool, READ_BUFFER_SIZES } from "./buffer-pool.js";
import { LineConnection } from "./connection.js";
import { relay, type RelayResult } from "./relay.js";
import { connectReusingBuffer, PooledReads } from "./reused-buffer.js";

const MAX = READ_BUFFER_SIZES[READ_BUFFER_SIZES.length - 1];
const KiB = 1024;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const testPool = (maxIdleBytesPerSize = 64 * MAX) => new BufferPool({ sizes: READ_BUFFER_SIZES, maxIdleBytesPerSize, poison: 0xee });

function listen(onConn: (s: Socket) => void): Promise<number> {
  const srv = createServer(onConn);
  servers.push(srv);
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve((srv.address() as { port: number }).port)));
}

/** A "mailbox server" that greets, then sends `body` and closes; `bursty` sends it in pieces of random size with pauses. */
async function backend(greeting: string, body: Buffer, bursty = false): Promise<number> {
  return listen((s) => {
    s.on("error", () => undefined);
    s.write(greeting);
    if (!bursty) return void s.end(body);
    let off = 0;
    const next = () => {
      if (off >= body.length) return void s.end();
      // Pieces from a few bytes to more than the largest buffer: reads fill buffers, then turn small.
      const n = Math.min(body.length - off, Math.random() < 0.5 ? 1 + Math.floor(Math.random() * 20 * KiB) : Math.floor(Math.random() * 1.5 * MAX));
      const piece = body.subarray(off, off + n);
      off += n;
      if (s.write(piece)) setTimeout(next, Math.random() < 0.3 ? 3 : 0);
      else s.once("drain", next);
    };
    next();
  });
}

/** A front door that reads the greeting line with the line reader, then relays. */
async function front(backendPort: number, results: Promise<RelayResult>[], greetings: string[], pool: BufferPool): Promise<number> {
  return listen((client) => {
    client.on("error", () => undefined);
    const server = connectReusingBuffer({ host: "127.0.0.1", port: backendPort }, pool);
    server.on("error", () => undefined);
    const conn = new LineConnection(server, { maxLineLength: 1000, idleMs: 10_000, deadline: 0 });
    results.push(
      conn.readLine().then((line) => {
        greetings.push(line.toString());
        const { socket, leftover } = conn.release();
        return relay(client, Buffer.alloc(0), socket, leftover);
      }),
    );
  });
}

/** Read everything; `slow` pauses the socket for a few milliseconds after every chunk. */
function drain(port: number, slow: boolean): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    const h = createHash("sha256");
    let bytes = 0;
    s.on("data", (d: Buffer) => {
      h.update(d);
      bytes += d.length;
      if (slow) {
        s.pause();
        setTimeout(() => s.resume(), 2);
      }
    });
    s.on("end", () => resolve({ bytes, sha: h.digest("hex") }));
    s.on("error", reject);
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("relay over pooled read buffers", () => {
  for (const slow of [false, true]) {
    for (const bursty of [false, true]) {
      it(`delivers every byte in order to a ${slow ? "slow" : "fast"} reader${bursty ? " of a bursty server" : ""}, after the line reader took the greeting; the buffers go back`, async () => {
        // More than the largest read buffer, so buffers change size and are reused many times.
        const body = randomBytes(slow ? 6 * MAX + 12345 : 24 * MAX + 7);
        const pool = testPool();
        const results: Promise<RelayResult>[] = [];
        const greetings: string[] = [];
        const port = await front(await backend("* OK ready\r\n", body, bursty), results, greetings, pool);
        const got = await drain(port, slow);
        expect(greetings).toEqual(["* OK ready"]);
        expect(got.bytes).toBe(body.length);
        expect(got.sha).toBe(sha(body));
        const r = await results[0];
        expect(r.serverToClient).toBe(body.length);
        expect(pool.stats().lent).toBe(0);
        // It did move up to the largest size.
        expect(pool.stats().idle[READ_BUFFER_SIZES.length - 1]).toBeGreaterThan(0);
      });
    }
  }

  it("several connections at once through one pool each get their own bytes, and give every buffer back", async () => {
    const pool = testPool();
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(i % 4 === 3 ? 100_000 : (2 + (i % 3)) * MAX + 99 * i));
    const results: Promise<RelayResult>[] = [];
    const got = await Promise.all(
      bodies.map(async (b, i) => {
        const port = await front(await backend(`* OK ${i}\r\n`, b, i % 2 === 1), results, [], pool);
        return drain(port, i % 2 === 0 || i % 3 === 0);
      }),
    );
    got.forEach((g, i) => expect(g.sha).toBe(sha(bodies[i])));
    await Promise.all(results);
    expect(pool.stats().lent).toBe(0);
  });

  it("keeps no more idle memory than its bound", async () => {
    // Room for one idle buffer of the largest size, four of the next; 6 connections in bulk at once.
    const pool = testPool(MAX);
    const bodies = Array.from({ length: 6 }, () => randomBytes(4 * MAX));
    const results: Promise<RelayResult>[] = [];
    await Promise.all(bodies.map(async (b) => drain(await front(await backend("* OK\r\n", b), results, [], pool), true)));
    await Promise.all(results);
    const s = pool.stats();
    expect(s.lent).toBe(0);
    expect(s.idle).toEqual(s.idle.map((n, k) => Math.min(n, MAX / READ_BUFFER_SIZES[k])));
    expect(s.idleBytes).toBeLessThanOrEqual(READ_BUFFER_SIZES.length * MAX);
    expect(s.dropped).toBeGreaterThan(0);
  });

  it("a login that fails (no hand-off) gives its buffer back when the socket closes", async () => {
    const pool = testPool();
    const port = await listen((s) => s.end("* BYE\r\n"));
    const s = connectReusingBuffer({ host: "127.0.0.1", port }, pool);
    const data: Buffer[] = [];
    s.on("data", (d: Buffer) => data.push(d));
    await new Promise((r) => s.once("close", r));
    expect(Buffer.concat(data).toString()).toBe("* BYE\r\n");
    expect(pool.stats().lent).toBe(0);
  });
});

describe("PooledReads, driven as Node's onread does (buffer() after every callback)", () => {
  /** One read of n bytes into the armed buffer; returns the buffer that was read into. */
  const read = (r: PooledReads, n: number): Buffer => {
    const b = r.buffer();
    b.fill(0x41, 0, n);
    r.callback(n, b);
    return b;
  };
  const [S16, S64, S256, S1M] = READ_BUFFER_SIZES;

  it("moves up a size on every full read, and after any other read down to the smallest size at least 4x that read", () => {
    const pool = testPool();
    const r = new PooledReads(pool);
    r.sink = () => false;
    const sizes: number[] = [r.buffer().length];
    const reads = [S16, S64, S256, S1M, S1M, 300 * KiB, 64 * KiB, 64 * KiB, S256, 65 * KiB, 16 * KiB, 15 * KiB, 4 * KiB, S16, S64, 100, S16, 3 * KiB];
    for (const n of reads) {
      read(r, n);
      sizes.push(r.buffer().length);
    }
    expect(sizes).toEqual([S16, S64, S256, S1M, S1M, S1M, S1M, S256, S256, S1M, S1M, S64, S64, S16, S64, S256, S16, S64, S16]);
    expect(pool.stats().lent).toBe(1);
    r.finish();
    r.finish();
    expect(pool.stats().lent).toBe(0);
  });

  it("a buffer a pending write refers to goes back only after released(), and nobody else gets it meanwhile", () => {
    const pool = testPool();
    const r = new PooledReads(pool);
    let held = true;
    const views: Buffer[] = [];
    r.sink = (v) => {
      views.push(v);
      return held;
    };
    const first = read(r, S16); // full: moves up while its write is pending
    expect(r.buffer()).not.toBe(first);
    expect(pool.stats().lent).toBe(2);
    const other = pool.take(0);
    expect(other).not.toBe(first);
    expect(views[0].every((x) => x === 0x41)).toBe(true); // not overwritten
    r.released();
    expect(pool.stats().lent).toBe(2); // r's 64 KiB buffer and `other`
    expect(first.every((x) => x === 0xee)).toBe(true); // given back (poisoned) only now
    pool.give(other);
    held = false;
    read(r, 1000); // fits 16 KiB: moves down, the 64 KiB buffer goes straight back
    expect(r.buffer().length).toBe(S16);
    expect(pool.stats().lent).toBe(1);
    r.finish();
    expect(pool.stats().lent).toBe(0);
  });

  it("finish() gives back a buffer still left by a size change (the relay's sockets have both closed)", () => {
    const pool = testPool();
    const r = new PooledReads(pool);
    r.sink = () => true;
    read(r, S16);
    expect(pool.stats().lent).toBe(2);
    r.finish();
    expect(pool.stats().lent).toBe(0);
    r.released(); // late write callback: nothing more to give
    expect(pool.stats().lent).toBe(0);
  });

  it("before the hand-off, reads are copied out as 'data' events", () => {
    const pool = testPool();
    const r = new PooledReads(pool);
    const got: Buffer[] = [];
    r.socket = { emit: (_e: string, d: Buffer) => got.push(d) } as unknown as Socket;
    const b = read(r, 5);
    expect(got[0].toString()).toBe("AAAAA");
    expect(got[0].buffer).not.toBe(b.buffer);
  });
});

describe("BufferPool", () => {
  it("reuses buffers by size, keeps at most its bound idle, and refuses foreign buffers", () => {
    const pool = new BufferPool({ sizes: [4, 8], maxIdleBytesPerSize: 16 });
    const a = pool.take(1);
    const b = pool.take(1);
    const c = pool.take(1);
    expect([a.length, pool.stats().allocated, pool.stats().lent]).toEqual([8, 3, 3]);
    pool.give(a);
    pool.give(b);
    pool.give(c); // third 8-byte buffer: over 16 bytes, dropped
    expect(pool.stats()).toMatchObject({ lent: 0, idle: [0, 2], idleBytes: 16, dropped: 1 });
    expect(pool.take(1)).toBe(b);
    expect(() => pool.give(Buffer.alloc(5))).toThrow(/not from this pool/);
  });
});
