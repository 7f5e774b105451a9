// The byte relay over a reused-buffer mailbox connection: every byte arrives, in order, when the
// client reads slowly (writes then cannot complete at once, so the reader must pause until they
// have) and when it reads fast; the line reader before the hand-off sees copies of the reads.
import { createHash, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LineConnection } from "./connection.js";
import { relay, type RelayResult } from "./relay.js";
import { connectReusingBuffer, MAX_READ_BUFFER } from "./reused-buffer.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function listen(onConn: (s: Socket) => void): Promise<number> {
  const srv = createServer(onConn);
  servers.push(srv);
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve((srv.address() as { port: number }).port)));
}

/** A "mailbox server" that greets, then sends `body` and closes. */
async function backend(greeting: string, body: Buffer): Promise<number> {
  return listen((s) => {
    s.on("error", () => undefined);
    s.write(greeting);
    s.end(body);
  });
}

/** A front door that reads the greeting line with the line reader, then relays. */
async function front(backendPort: number, results: Promise<RelayResult>[], greetings: string[]): Promise<number> {
  return listen((client) => {
    client.on("error", () => undefined);
    const server = connectReusingBuffer({ host: "127.0.0.1", port: backendPort });
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

describe("relay over a reused read buffer", () => {
  for (const slow of [false, true]) {
    it(`delivers every byte in order to a ${slow ? "slow" : "fast"} reader, after the line reader took the greeting`, async () => {
      // More than the largest read buffer, so the buffer grows and is reused many times.
      const body = randomBytes(slow ? 6 * MAX_READ_BUFFER + 12345 : 24 * MAX_READ_BUFFER + 7);
      const results: Promise<RelayResult>[] = [];
      const greetings: string[] = [];
      const port = await front(await backend("* OK ready\r\n", body), results, greetings);
      const got = await drain(port, slow);
      expect(greetings).toEqual(["* OK ready"]);
      expect(got.bytes).toBe(body.length);
      expect(got.sha).toBe(createHash("sha256").update(body).digest("hex"));
      const r = await results[0];
      expect(r.serverToClient).toBe(body.length);
    });
  }

  it("several connections at once each get their own bytes", async () => {
    const bodies = [randomBytes(3 * MAX_READ_BUFFER + 1), randomBytes(2 * MAX_READ_BUFFER + 99), randomBytes(100_000)];
    const got = await Promise.all(
      bodies.map(async (b, i) => {
        const port = await front(await backend(`* OK ${i}\r\n`, b), [], []);
        return drain(port, i % 2 === 0);
      }),
    );
    got.forEach((g, i) => expect(g.sha).toBe(createHash("sha256").update(bodies[i]).digest("hex")));
  });
});
