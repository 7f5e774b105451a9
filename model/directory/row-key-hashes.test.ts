// The load's fast key hashing must agree with the exact path (rowToRecord + recordKeys) on every row
// it accepts, and accept no row the exact path rejects.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fnv1a } from "./key-index.js";
import { columnsOf, CsvDirectoryError, recordKeys, rowToRecord } from "./mailbox-row.js";
import { rowKeyHashes } from "./row-key-hashes.js";

const ALL = ["Name", "PrimarySmtpAddress", "UserPrincipalName", "SamAccountName", "Domain", "Database", "ExchangeGuid", "EmailAddresses", "DisplayName"];

// Pieces that stress the fast path: case, ASCII and non-ASCII white space, non-ASCII letters whose
// lower case JavaScript decides (İ, Σ, ß), separators, '@', braces and GUID digits.
const piece = fc.constantFrom("a", "B", "z", "Q", "@", ".", "-", " ", "\t", "\u00a0", "\ufeff", "İ", "Σ", "ß", "é", "{", "}", "\\", ";", ",", "smtp:", "SMTP:", "X400:", "0", "f", "F", "9");
const text = fc.array(piece, { maxLength: 8 }).map((a) => a.join(""));
const address = fc.tuple(fc.constantFrom("", " ", "\t"), fc.stringMatching(/^[A-Za-z0-9.]{1,6}$/), fc.constantFrom("@", "@", "@", "@@", ""), fc.stringMatching(/^[A-Za-z0-9.]{0,6}$/), fc.constantFrom("", "", "", " ", "É")).map((p) => p.join(""));
const guid = fc.oneof(
  fc.uuid().map((g) => g.toUpperCase()),
  fc.uuid(),
  fc.uuid().map((g) => `{${g}}`),
  fc.uuid().map((g) => ` ${g} `),
  fc.uuid().map((g) => `{${g}`),
  fc.constant(""),
  text,
);
const emails = fc.array(fc.tuple(fc.constantFrom("SMTP:", "smtp:", "sMtP:", "X500:", ""), address, fc.constantFrom(" ", ";", ",", "\t")), { maxLength: 4 }).map((xs) => xs.map((x) => x.join("")).join(""));

const row = fc.record({
  Name: text,
  PrimarySmtpAddress: fc.oneof({ arbitrary: address, weight: 4 }, { arbitrary: text, weight: 1 }),
  UserPrincipalName: fc.oneof(address, text, fc.constant("")),
  SamAccountName: fc.oneof(text, fc.constant("")),
  Domain: fc.oneof(text, fc.constant(""), fc.constant("CONTOSO")),
  Database: fc.oneof({ arbitrary: fc.constantFrom("DB1", " DB 2 "), weight: 4 }, { arbitrary: fc.constantFrom("", " "), weight: 1 }, { arbitrary: text, weight: 1 }),
  ExchangeGuid: guid,
  EmailAddresses: emails,
  DisplayName: text,
});

describe("rowKeyHashes (load fast path) against rowToRecord + recordKeys (exact path)", () => {
  it("accepts only rows the exact path accepts, with the same database and the same key hashes", () => {
    let fastTaken = 0;
    fc.assert(
      fc.property(fc.subarray(ALL, { minLength: 1 }), row, fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }), (cols, r, short) => {
        const header = ["PrimarySmtpAddress", "Database", ...cols.filter((c) => c !== "PrimarySmtpAddress" && c !== "Database")];
        const at = columnsOf(header, "p.csv", 1);
        const fields = header.map((c) => r[c as keyof typeof r]);
        if (short) fields.pop();
        let exact: { database: string; hashes: Set<number> } | undefined;
        try {
          const rec = rowToRecord(fields, at, "p.csv", 2);
          exact = { database: rec.database, hashes: new Set(recordKeys(rec, true).map(fnv1a)) };
        } catch (err) {
          if (!(err instanceof CsvDirectoryError)) throw err;
        }
        const out: number[] = [];
        const db = rowKeyHashes(fields, at, out);
        if (db === undefined) return; // the exact path decides
        fastTaken++;
        expect(exact).toBeDefined();
        expect(db).toBe(exact!.database);
        expect(new Set(out)).toEqual(exact!.hashes);
      }),
      { numRuns: 20_000 },
    );
    // The generators must reach the fast path often enough for the comparison to mean something.
    expect(fastTaken).toBeGreaterThan(2000);
  });

  it("takes the fast path for a plain Export-Csv row", () => {
    const header = ["PrimarySmtpAddress", "UserPrincipalName", "SamAccountName", "Domain", "Database", "ExchangeGuid", "EmailAddresses"];
    const at = columnsOf(header, "p.csv", 1);
    const out: number[] = [];
    const db = rowKeyHashes(["Ann@X.com", "ann@corp.x.com", "Ann", "CONTOSO", "DB1", "{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}", "SMTP:Ann@X.com smtp:a@x.com X400:c=US"], at, out);
    expect(db).toBe("DB1");
    expect(out.sort()).toEqual(["ann@x.com", "a@x.com", "ann@corp.x.com", "ann", "contoso\\ann", "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c"].map(fnv1a).sort());
  });
});
