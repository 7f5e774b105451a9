import { describe, expect, it } from "vitest";
import { decodeBase64, encodePlain, isNtlmMessage, mailboxIdentity, ntlmChallenge, ntlmIdentity, parsePlain } from "./sasl.js";

describe("SASL", () => {
  it("PLAIN round trip, with and without an authorization identity", () => {
    const c = parsePlain(decodeBase64(encodePlain({ authzid: "", user: "alice@contoso.test", password: "p w" }))!);
    expect(c).toEqual({ authzid: "", user: "alice@contoso.test", password: "p w", mechanism: "PLAIN" });
    const d = parsePlain(Buffer.from("shared@contoso.test\0admin\0secret"))!;
    expect(mailboxIdentity(d)).toBe("shared@contoso.test");
    expect(parsePlain(Buffer.from("only\0two"))).toBeUndefined();
    expect(parsePlain(Buffer.from("\0user\0"))).toBeUndefined();
  });

  it("base64 is decoded strictly", () => {
    expect(decodeBase64("YWJj")?.toString()).toBe("abc");
    expect(decodeBase64("YWJ")).toBeUndefined();
    expect(decodeBase64("!!!!")).toBeUndefined();
  });

  it("NTLM: our challenge is a Type 2 message; user and domain come out of a Type 3", () => {
    expect(isNtlmMessage(ntlmChallenge(), 2)).toBe(true);
    // A Type 3 with Unicode strings: domain CONTOSO, user bob.
    const domain = Buffer.from("CONTOSO", "utf16le");
    const user = Buffer.from("bob", "utf16le");
    const head = Buffer.alloc(64);
    Buffer.from("NTLMSSP\0", "latin1").copy(head);
    head.writeUInt32LE(3, 8);
    head.writeUInt16LE(domain.length, 28);
    head.writeUInt16LE(domain.length, 30);
    head.writeUInt32LE(64, 32);
    head.writeUInt16LE(user.length, 36);
    head.writeUInt16LE(user.length, 38);
    head.writeUInt32LE(64 + domain.length, 40);
    head.writeUInt32LE(1, 60);
    expect(ntlmIdentity(Buffer.concat([head, domain, user]))).toEqual({ user: "bob", domain: "CONTOSO" });
    expect(ntlmIdentity(head.subarray(0, 40))).toBeUndefined();
  });
});
