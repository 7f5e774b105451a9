// PROXY protocol v1 (text) and v2 (binary) header, as Envoy's proxy_protocol upstream transport
// socket sends it: the mail proxy then logs and limits by the real client address, not Envoy's.
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
import type { Duplex } from "node:stream";

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;

export interface ProxyHeader {
  /** The original client address; undefined for LOCAL/UNKNOWN (health checks). */
  readonly sourceAddress?: string;
  readonly sourcePort?: number;
  /** Bytes after the header (the client's first protocol bytes, if any). */
  readonly leftover: Buffer;
}

export type ParseResult = { done: true; header: ProxyHeader } | { done: false; need: boolean; error?: string };

/** Parse a header from the bytes received so far; `need` = wait for more. */
export function parseProxyHeader(b: Buffer): ParseResult {
  if (b.length >= 1 && b[0] === 0x0d) {
    const n = Math.min(b.length, 12);
    if (!b.subarray(0, n).equals(V2_SIG.subarray(0, n))) return { done: false, need: false, error: "bad PROXY v2 signature" };
    if (b.length < 16) return { done: false, need: true };
    const verCmd = b[12];
    if (verCmd >> 4 !== 2) return { done: false, need: false, error: "unsupported PROXY version" };
    const fam = b[13];
    const len = b.readUInt16BE(14);
    if (b.length < 16 + len) return { done: false, need: true };
    const body = b.subarray(16, 16 + len);
    const leftover = b.subarray(16 + len);
    if ((verCmd & 0x0f) === 0) return { done: true, header: { leftover } }; // LOCAL
    if (fam >> 4 === 1 && body.length >= 12) {
      return { done: true, header: { sourceAddress: [...body.subarray(0, 4)].join("."), sourcePort: body.readUInt16BE(8), leftover } };
    }
    if (fam >> 4 === 2 && body.length >= 36) {
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(body.readUInt16BE(i).toString(16));
      return { done: true, header: { sourceAddress: parts.join(":"), sourcePort: body.readUInt16BE(32), leftover } };
    }
    return { done: true, header: { leftover } };
  }
  const nl = b.indexOf("\r\n");
  if (nl < 0) {
    if (b.length >= V1_MAX) return { done: false, need: false, error: "PROXY v1 header too long" };
    const head = b.toString("latin1", 0, Math.min(6, b.length));
    return "PROXY ".startsWith(head) ? { done: false, need: true } : { done: false, need: false, error: "no PROXY header" };
  }
  const line = b.toString("latin1", 0, nl);
  const leftover = b.subarray(nl + 2);
  const m = /^PROXY (TCP4|TCP6) (\S+) (\S+) (\d+) (\d+)$/.exec(line);
  if (m) return { done: true, header: { sourceAddress: m[2], sourcePort: Number(m[4]), leftover } };
  if (/^PROXY UNKNOWN( .*)?$/.test(line)) return { done: true, header: { leftover } };
  return { done: false, need: false, error: "malformed PROXY v1 header" };
}

/** Read the header off a fresh connection (bounded in time and size). */
export function readProxyHeader(socket: Duplex, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const finish = (err?: Error, h?: ProxyHeader) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(h!);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const r = parseProxyHeader(buf);
      if (r.done) finish(undefined, r.header);
      else if (!r.need || buf.length > 16 + 65535) finish(new Error(r.error ?? "bad PROXY header"));
    };
    const onClose = () => finish(new Error("closed before the PROXY header"));
    const timer = setTimeout(() => finish(new Error("no PROXY header in time")), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}
