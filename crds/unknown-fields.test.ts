import { describe, expect, it } from "vitest";
import { z } from "zod";
import { KIND_SCHEMAS } from "./index.js";
import { findUnknownFields, suggest, unknownFieldMessage } from "./unknown-fields.js";

const vdir = {
  apiVersion: "casgateway.io/v1alpha1",
  kind: "VirtualDirectory",
  metadata: { name: "owa", managedFields: [{ manager: "kubectl" }] },
  spec: { server: "cas01", service: "Pop3", externalURL: "https://x/owa", internalConnectionSettings: [{ hostname: "a", port: 110, prot: 1 }] },
};

describe("findUnknownFields", () => {
  it("names misspelt keys at any depth with the nearest declared name; loose metadata is not checked", () => {
    const found = findUnknownFields(KIND_SCHEMAS.VirtualDirectory, vdir);
    expect(found.map((u) => [u.path.join("."), u.suggestion])).toEqual([
      ["spec.externalURL", "externalUrl"],
      ["spec.internalConnectionSettings.0.prot", "port"],
    ]);
    expect(unknownFieldMessage(found[0])).toBe('unknown field "externalURL"; did you mean externalUrl?');
  });

  it("suggests only close names: a typo yes, an unrelated word no (then lists the known fields)", () => {
    expect(suggest("maintenence", ["fqdn", "maintenance", "site"])).toEqual({ suggestion: "maintenance" });
    expect(suggest("colour", ["fqdn", "maintenance", "site"])).toEqual({});
    const [u] = findUnknownFields(z.object({ a: z.string(), b: z.number().optional() }), { a: "x", colour: 1 });
    expect(unknownFieldMessage(u)).toBe('unknown field "colour"; known fields here: a, b');
  });

  it("goes through optional, default, nullable, records and unions; a clean object has none", () => {
    const s = z.object({ m: z.record(z.string(), z.object({ x: z.number() })).optional(), u: z.union([z.string(), z.object({ y: z.number() })]).nullable() });
    expect(findUnknownFields(s, { m: { k: { x: 1, z: 2 } }, u: { y: 1, yy: 2 } }).map((u) => u.path.join("."))).toEqual(["m.k.z", "u.yy"]);
    expect(findUnknownFields(s, { m: { k: { x: 1 } }, u: "s" })).toEqual([]);
  });
});
