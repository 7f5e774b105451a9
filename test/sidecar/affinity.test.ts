// Affinity cookie unit tests (R-LB-2, R-LB-5): signing, verification, scope, parsing hostile headers.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AFFINITY_COOKIE, AffinitySigner, affinityPathFor, cookieValues, loadAffinityKey, pathUnder } from "../../sidecar/authz/affinity.js";

const KEY = Buffer.alloc(32, 4);
const value = (c: string) => c.split(";")[0].slice(AFFINITY_COOKIE.length + 1);

describe("affinity cookie", () => {
  it("R-LB-2: a signed pin verifies for its host and path only, until it expires", () => {
    let now = 1_700_000_000_000;
    const s = new AffinitySigner(KEY, 60, () => now);
    const v = value(s.setCookie("usa-cas02", "USA.contoso.com:443", "/owa"));
    expect(s.verify(v, "usa.contoso.com", "/owa")?.server).toBe("usa-cas02");
    expect(s.verify(v, "europe.contoso.com", "/owa")).toBeUndefined();
    expect(s.verify(v, "usa.contoso.com", "/ecp")).toBeUndefined();
    now += 61_000;
    expect(s.verify(v, "usa.contoso.com", "/owa")).toBeUndefined();
  });

  it("R-LB-5: tampered payloads, signatures, other keys and junk are ignored", () => {
    const s = new AffinitySigner(KEY);
    const v = value(s.setCookie("usa-cas02", "usa.contoso.com", "/owa"));
    const [payload, sig = ""] = v.split(".");
    // The rewritten last character must differ from the real one (it is "A" for 1 MAC in 16).
    const forged = Buffer.from(JSON.stringify({ s: "evil", h: "usa.contoso.com", p: "/owa", e: 9e9 })).toString("base64url");
    for (const bad of [`${forged}.${sig}`, `${payload}.${sig.slice(0, -1)}${sig.endsWith("A") ? "Q" : "A"}`, `${payload}.`, payload, "", ".", "a.b.c", "%00", "x".repeat(5000)]) {
      expect(s.verify(bad, "usa.contoso.com", "/owa")).toBeUndefined();
    }
    expect(new AffinitySigner(Buffer.alloc(32, 5)).verify(v, "usa.contoso.com", "/owa")).toBeUndefined();
  });

  it("R-LB-5: only the signature's own spelling verifies (other base64url spellings of the same MAC do not)", () => {
    const s = new AffinitySigner(KEY);
    // 43 base64url characters carry 258 bits for a 256-bit MAC: the last character's low 2 bits are
    // spare, so four characters decode to the same bytes. Found on CI: a rewritten last character
    // sometimes still verified, depending on the cookie's expiry time.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (let i = 0; i < 64; i++) {
      const [payload, sig] = value(s.setCookie(`usa-cas0${i}`, "usa.contoso.com", "/owa")).split(".");
      const last = alphabet.indexOf(sig!.at(-1)!);
      for (let spare = 0; spare < 4; spare++) {
        const c = alphabet[(last & ~3) | spare]!;
        const spelledSig = `${sig!.slice(0, -1)}${c}`;
        expect(Buffer.from(spelledSig, "base64url").equals(Buffer.from(sig!, "base64url"))).toBe(true);
        expect(s.verify(`${payload}.${spelledSig}`, "usa.contoso.com", "/owa")?.server, c).toBe(c === sig!.at(-1) ? `usa-cas0${i}` : undefined);
      }
      expect(s.verify(`${payload}.${sig}=`, "usa.contoso.com", "/owa")).toBeUndefined();
    }
  });

  it("finds the valid pin among several cookies of the same name and ignores a hostile header", () => {
    const s = new AffinitySigner(KEY);
    const good = value(s.setCookie("usa-cas01", "usa.contoso.com", "/EWS"));
    const header = `${AFFINITY_COOKIE}=junk; other=1; ${AFFINITY_COOKIE}="${good}"`;
    expect(s.pinFromCookieHeader(header, "usa.contoso.com", "/EWS/Exchange.asmx")?.server).toBe("usa-cas01");
    expect(s.pinFromCookieHeader(header, "usa.contoso.com", "/owa/")).toBeUndefined();
    expect(cookieValues(";;==;=x; =; a", AFFINITY_COOKIE)).toEqual([]);
    expect(cookieValues("x".repeat(20000), AFFINITY_COOKIE)).toEqual([]);
  });

  it("scopes by virtual directory path on a segment boundary, case-insensitively", () => {
    // R-LB-7: OWA and ECP share one pin, a cookie the browser sends to both.
    expect(affinityPathFor("/OWA/?ae=Item")).toBe("/");
    expect(affinityPathFor("/ecp/PersonalSettings/")).toBe("/");
    expect(affinityPathFor("/ews/exchange.asmx")).toBe("/EWS");
    expect(affinityPathFor("/owafake")).toBeUndefined();
    expect(pathUnder("/ecp", "/ecp")).toBe(true);
    expect(pathUnder("/ecpx", "/ecp")).toBe(false);
  });

  it("Set-Cookie attributes: Path, Max-Age, Secure, HttpOnly, SameSite=Lax; clear expires it", () => {
    const s = new AffinitySigner(KEY, 3600);
    expect(s.setCookie("a", "h", "/owa")).toMatch(/^cas-affinity=[\w-]+\.[\w-]+; Path=\/owa; Max-Age=3600; Secure; HttpOnly; SameSite=Lax$/);
    expect(s.clearCookie("/ecp")).toMatch(/^cas-affinity=; Path=\/ecp; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Lax$/);
  });

  it("loads the key from a file (trailing newline dropped) and refuses short keys", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "cas-affinity-"));
    try {
      writeFileSync(path.join(dir, "k"), `${"z".repeat(32)}\r\n`);
      expect((await loadAffinityKey(path.join(dir, "k"))).length).toBe(32);
      writeFileSync(path.join(dir, "s"), "z".repeat(31));
      await expect(loadAffinityKey(path.join(dir, "s"))).rejects.toThrow(/31 bytes/);
      expect(() => new AffinitySigner(Buffer.alloc(8))).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
