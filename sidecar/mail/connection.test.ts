// Issue 20, finding 3: before login the proxy must not buffer without limit. Before: every chunk
// that arrived while no read was pending (the backend answering the replayed login slowly) was
// appended with a Buffer.concat; one client pushed 29 MB in 12 s. Now the socket is paused past
// MAX_UNREAD_BYTES and TCP pushes back on the client.
import { createConnection, createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { LineConnection, MAX_UNREAD_BYTES } from "./connection.js";

describe("LineConnection bounds what it holds for a client (issue 20, finding 3)", () => {
  it("a client that floods while no read is pending is paused, not buffered; reads go on afterwards", async () => {
    let serverSide!: Socket;
    const server = createServer((s) => (serverSide = s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const client = createConnection(port, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    await expect.poll(() => serverSide !== undefined).toBe(true);
    const conn = new LineConnection(serverSide, { maxLineLength: 8192, idleMs: 0, deadline: 0 });
    // First a command line is read, then nothing is asked for while the client floods.
    client.write("a1 LOGIN user pass\r\n");
    expect((await conn.readLine()).toString()).toBe("a1 LOGIN user pass");
    const line = Buffer.from(`${"x".repeat(98)}\r\n`);
    let sent = 0;
    const deadline = Date.now() + 3000;
    // Write 8 MB (or until the kernel's buffers push back): the proxy must not hold it.
    while (sent < 8 << 20 && Date.now() < deadline) {
      const ok = client.write(line);
      sent += line.length;
      if (!ok) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(conn.buffered).toBeLessThan(MAX_UNREAD_BYTES + 256 * 1024); // a pause lands after at most one more chunk
    // Reading again resumes the socket: lines keep coming, in order.
    for (let i = 0; i < 3000; i++) expect((await conn.readLine()).length).toBe(98);
    client.destroy();
    serverSide.destroy();
    server.close();
  });
});
