// R-LB-8: the sidecar's memory of NTLM/Negotiate connections is bounded and expires.
import { describe, expect, it } from "vitest";
import { ConnectionMemory, connectionKey } from "./connections.js";

const b = (server: string) => ({ service: "Ews" as const, site: "usa", server, decidedBy: "test" });

describe("R-LB-8: per-connection memory", () => {
  it("R-LB-8: a connection is keyed by source address, port and host; none without a port", () => {
    expect(connectionKey("203.0.113.7", 51234, "Mail.Contoso.com")).toBe("203.0.113.7:51234 mail.contoso.com");
    expect(connectionKey("2001:db8::1", 443, "a")).toBe("[2001:db8::1]:443 a");
    expect(connectionKey("203.0.113.7", undefined, "a")).toBeUndefined();
    expect(connectionKey(undefined, 1, "a")).toBeUndefined();
  });

  it("R-LB-8: forgets a connection idle past the limit, keeps one in use", () => {
    let t = 0;
    const m = new ConnectionMemory({ idleMs: 1000, now: () => t });
    m.set("a", b("s1"));
    m.set("b", b("s2"));
    t = 900;
    expect(m.get("a")?.server).toBe("s1"); // used: refreshed
    t = 1500;
    expect(m.get("b")).toBeUndefined(); // idle 1500 ms
    expect(m.get("a")?.server).toBe("s1"); // idle 600 ms
    t = 5000;
    m.set("c", b("s3")); // sweeps the idle front
    expect(m.size).toBe(1);
    expect(m.forgotten.expired).toBe(2);
  });

  it("R-LB-8: never holds more than maxEntries; the least recently used goes first", () => {
    let t = 0;
    const m = new ConnectionMemory({ maxEntries: 3, now: () => t++ });
    for (const k of ["a", "b", "c"]) m.set(k, b(k));
    m.get("a");
    m.set("d", b("d"));
    expect(m.size).toBe(3);
    expect(m.peek("b")).toBeUndefined();
    expect(m.peek("a")?.server).toBe("a");
    for (let i = 0; i < 10_000; i++) m.set(`k${i}`, b("x"));
    expect(m.size).toBe(3);
    expect(m.forgotten.evicted).toBe(10_001);
  });
});
