import { describe, expect, it } from "vitest";
import { parseProxyHeader } from "./proxy-protocol.js";

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(cmd: number, fam: number, body: Buffer, rest = ""): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | cmd;
  head[1] = fam;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIG, head, body, Buffer.from(rest)]);
}

describe("PROXY protocol header", () => {
  it("v1 TCP4 and TCP6, with the client's first bytes kept", () => {
    const r = parseProxyHeader(Buffer.from("PROXY TCP4 203.0.113.7 10.0.0.1 5555 143\r\na1 CAPABILITY\r\n"));
    expect(r).toEqual({ done: true, header: { sourceAddress: "203.0.113.7", sourcePort: 5555, leftover: Buffer.from("a1 CAPABILITY\r\n") } });
    const r6 = parseProxyHeader(Buffer.from("PROXY TCP6 2001:db8::1 ::1 40000 110\r\n"));
    expect(r6.done && r6.header.sourceAddress).toBe("2001:db8::1");
    expect(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n"))).toMatchObject({ done: true, header: { leftover: Buffer.alloc(0) } });
  });

  it("v2 PROXY over IPv4 and IPv6, and LOCAL", () => {
    const body4 = Buffer.from([203, 0, 113, 9, 10, 0, 0, 1, 0x15, 0xb3, 0x00, 0x8f]);
    expect(parseProxyHeader(v2(1, 0x11, body4, "x"))).toEqual({ done: true, header: { sourceAddress: "203.0.113.9", sourcePort: 5555, leftover: Buffer.from("x") } });
    const body6 = Buffer.alloc(36);
    body6.writeUInt16BE(0x2001, 0);
    body6.writeUInt16BE(0x0db8, 2);
    body6.writeUInt16BE(7, 14);
    body6.writeUInt16BE(4242, 32);
    const r6 = parseProxyHeader(v2(1, 0x21, body6));
    expect(r6.done && r6.header).toMatchObject({ sourceAddress: "2001:db8:0:0:0:0:0:7", sourcePort: 4242 });
    expect(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))).toMatchObject({ done: true, header: {} });
  });

  it("partial headers wait; garbage is refused", () => {
    expect(parseProxyHeader(Buffer.from("PRO"))).toEqual({ done: false, need: true });
    expect(parseProxyHeader(V2_SIG.subarray(0, 7))).toEqual({ done: false, need: true });
    expect(parseProxyHeader(Buffer.from("a1 LOGIN x y\r\n"))).toMatchObject({ done: false, need: false });
    expect(parseProxyHeader(Buffer.from("PROXY TCP4 nonsense\r\n"))).toMatchObject({ done: false, need: false });
    expect(parseProxyHeader(Buffer.from("PROXY " + "9".repeat(200)))).toMatchObject({ done: false, need: false });
  });
});
