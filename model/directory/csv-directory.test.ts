import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CsvDirectory, CsvDirectoryError, identityKey, loadCsvDirectory, parseCsvDirectory } from "./csv-directory.js";
import { KeyIndex, fnv1a } from "./key-index.js";
import { resolveIdentities } from "./types.js";

const HEADER = `#TYPE Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n"Name","DisplayName","PrimarySmtpAddress","UserPrincipalName","SamAccountName","Domain","Database","ExchangeGuid","EmailAddresses"\r\n`;
const ROWS = [
  `"alice","Adams, Alice ""Al""","Alice@Contoso.com","alice.adams@corp.contoso.com","alice","CONTOSO","DB-USA-2010","{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}","SMTP:alice@contoso.com smtp:a.adams@contoso.com;smtp:alice@usa.contoso.com X400:c=US;a= ;p=Contoso"`,
  `"bob","Bob","bob@contoso.com","bob@contoso.com","bob","","DB-EUR-2010","9f9d51bc-70ef-21ca-5c14-f307980a29d8",""`,
];
const TEXT = HEADER + ROWS.join("\r\n") + "\r\n";

function thrown(fn: () => unknown): CsvDirectoryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CsvDirectoryError) return err;
    throw err;
  }
  throw new Error("did not throw");
}

describe("CsvDirectory", () => {
  const dir = parseCsvDirectory(TEXT, "mailboxes.csv");

  it("reads an Export-Csv file: #TYPE line, quoted fields with commas and doubled quotes, CRLF", () => {
    expect(dir.size).toBe(2);
    const alice = dir.find("alice@contoso.com");
    expect(alice).toMatchObject({
      status: "found",
      mailbox: {
        primarySmtpAddress: "alice@contoso.com",
        displayName: 'Adams, Alice "Al"',
        database: "DB-USA-2010",
        exchangeGuid: "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c",
        emailAddresses: ["alice@contoso.com", "a.adams@contoso.com", "alice@usa.contoso.com"],
        domain: "CONTOSO",
      },
    });
    expect(dir.lineOf(dir.records()[0])).toBe(3);
    expect(dir.lineOf(dir.records()[1])).toBe(4);
  });

  it.each([
    ["primary SMTP", "alice@contoso.com"],
    ["primary SMTP, other case", "ALICE@CONTOSO.COM"],
    ["proxy smtp: address", "a.adams@contoso.com"],
    ["second proxy address", "Alice@USA.contoso.com"],
    ["UPN", "alice.adams@corp.contoso.com"],
    ["DOMAIN\\sam", "CONTOSO\\alice"],
    ["domain\\sam lower case", "contoso\\ALICE"],
    ["bare sam", "Alice"],
    ["GUID", "6384e2b2-184b-cbf5-8ecc-f10ca7a6563c"],
    ["GUID with braces, upper case", "{6384E2B2-184B-CBF5-8ECC-F10CA7A6563C}"],
    ["surrounding spaces", "  alice@contoso.com "],
  ])("finds by %s", (_what, id) => {
    const r = dir.find(id);
    expect(r.status).toBe("found");
    if (r.status === "found") expect(r.mailbox.primarySmtpAddress).toBe("alice@contoso.com");
  });

  it("DOMAIN\\sam: a wrong domain does not match when the export has the Domain column; any domain when it has none", () => {
    expect(dir.find("FABRIKAM\\alice").status).toBe("not-found");
    expect(dir.find("ANYTHING\\bob")).toMatchObject({ status: "found", mailbox: { primarySmtpAddress: "bob@contoso.com" } });
  });

  it("not found, and the async interface", async () => {
    expect(dir.find("mallory@contoso.com")).toEqual({ status: "not-found" });
    expect(await dir.lookup("bob")).toMatchObject({ status: "found" });
    const view = await resolveIdentities(dir, ["bob", "nobody"]);
    expect(view.find("bob").status).toBe("found");
    expect(view.find("nobody").status).toBe("not-found");
    expect(view.find("never-asked").status).toBe("unavailable");
  });

  it("identityKey normalises case, spaces and GUID braces", () => {
    expect(identityKey(" {ABCDEF01-2345-6789-ABCD-EF0123456789} ")).toBe("abcdef01-2345-6789-abcd-ef0123456789");
    expect(identityKey("Bob@X.com")).toBe("bob@x.com");
  });

  it("works without the #TYPE line and with a BOM and LF line ends", () => {
    const d = parseCsvDirectory(`\uFEFF"PrimarySmtpAddress","Database"\n"x@contoso.com","DB1"\n`);
    expect(d.find("x@contoso.com")).toMatchObject({ status: "found", mailbox: { database: "DB1" } });
    expect(d.lineOf(d.records()[0])).toBe(2);
    expect(new CsvDirectory([]).find("x").status).toBe("not-found");
  });

  it("bad rows: file, line (counting the #TYPE line) and column name", () => {
    const bad = (row: string) => thrown(() => parseCsvDirectory(HEADER + ROWS[0] + "\r\n" + row + "\r\n", "m.csv"));
    let e = bad(`"c","C","not-an-address","","c","","DB","",""`);
    expect([e.file, e.line, e.field]).toEqual(["m.csv", 4, "PrimarySmtpAddress"]);
    expect(e.message).toBe('m.csv:4: PrimarySmtpAddress: "not-an-address" is not an SMTP address');
    e = bad(`"c","C","c@contoso.com","","c","","","",""`);
    expect([e.line, e.field, e.message]).toEqual([4, "Database", "m.csv:4: Database: is empty"]);
    e = bad(`"c","C","c@contoso.com","","c","","DB","1234",""`);
    expect([e.line, e.field]).toEqual([4, "ExchangeGuid"]);
    e = bad(`"c","C","c@contoso.com"`);
    expect([e.line, e.field]).toEqual([4, "(csv)"]);
    expect(e.message).toMatch(/column/i);
    e = bad(`"c","C","c@contoso.com","unterminated`);
    expect(e.field).toBe("(csv)");
    expect(e.line).toBeGreaterThanOrEqual(4);
  });

  it("a missing required column is reported on the header line", () => {
    const e = thrown(() => parseCsvDirectory(`#TYPE x\n"PrimarySmtpAddress","Name"\n"a@b.c","a"\n`, "m.csv"));
    expect([e.line, e.field]).toEqual([2, "Database"]);
  });

  it("loads the example organisation's file", async () => {
    const d = await loadCsvDirectory(join(import.meta.dirname, "..", "..", "examples", "contoso", "mailboxes.csv"));
    expect(d.size).toBe(12);
    expect(d.find("{155BAD9D-288C-1BED-BB3F-C799D47B944F}")).toMatchObject({ status: "found", mailbox: { database: "DB-ASIA-2016" } });
    expect(d.find("First Storage Group\\Mailbox Store (E2003)").status).toBe("not-found");
    expect(d.find("dave")).toMatchObject({ mailbox: { database: "First Storage Group\\Mailbox Store (E2003)" } });
  });
});

describe("CSV syntax (PapaParse underneath)", () => {
  const H = `"PrimarySmtpAddress","Database","DisplayName","EmailAddresses"\r\n`;
  it("quoted fields with commas, doubled quotes and line breaks; lines counted through them and through empty lines", () => {
    const d = parseCsvDirectory(
      `#TYPE x\r\n${H}"a@x.com","DB, 1","Say ""hi""",""\r\n"b@x.com","DB2","multi\nline\r\nname","smtp:b2@x.com"\r\n\r\n\n"c@x.com","DB3","",""\r\nd@x.com, DB4 ,plain,\r\n"e@x.com","DB5","no final line break",""`,
      "s.csv",
    );
    expect(d.records().map((r) => [r.primarySmtpAddress, r.database, r.displayName, d.lineOf(r)])).toEqual([
      ["a@x.com", "DB, 1", 'Say "hi"', 3],
      ["b@x.com", "DB2", "multi\nline\r\nname", 4],
      ["c@x.com", "DB3", undefined, 9], // b spans lines 4-6, then two empty lines
      ["d@x.com", "DB4", "plain", 10],
      ["e@x.com", "DB5", "no final line break", 11],
    ]);
    expect(d.find("B2@x.com")).toMatchObject({ status: "found", mailbox: { primarySmtpAddress: "b@x.com" } });
  });
  it("a row after a multi-line field reports its own line in errors", () => {
    const e = thrown(() => parseCsvDirectory(`${H}"a@x.com","DB","two\nlines",""\n"b@x.com","","",""\n`, "s.csv"));
    expect([e.file, e.line, e.field]).toEqual(["s.csv", 4, "Database"]);
  });
  it("an unterminated quote is an error with the line where the field opened", () => {
    const e = thrown(() => parseCsvDirectory(`${H}"a@x.com","DB","",""\n"b@x.com","DB","open\nstill open,\n`, "s.csv"));
    expect([e.line, e.field]).toEqual([3, "(csv)"]);
    expect(e.message).toMatch(/unterminated/);
  });
  it("text after a closing quote is an error", () => {
    const e = thrown(() => parseCsvDirectory(`${H}"a@x.com","DB"x,"",""\n`, "s.csv"));
    expect([e.line, e.field]).toEqual([2, "(csv)"]);
  });
  it("a file delimited by ';' (Export-Csv -UseCulture) or tabs says which delimiter was expected and which was found", () => {
    for (const [sep, name] of [[";", '";"'], ["\t", "a tab"]] as const) {
      for (const header of [`"PrimarySmtpAddress"${sep}"Database"`, `PrimarySmtpAddress${sep}Database`]) {
        const e = thrown(() => parseCsvDirectory(`#TYPE x\r\n${header}\r\n"a@x.com"${sep}"DB"\r\n`, "s.csv"));
        expect([e.line, e.field]).toEqual([2, "(csv)"]);
        expect(e.message).toContain(`expected "," as the delimiter (Export-Csv's default) but the header is delimited by ${name}; export again without -UseCulture/-Delimiter, or convert the file to commas`);
      }
    }
  });
  it("an empty file or one with only the #TYPE line has no header: the required column is missing", () => {
    expect(thrown(() => parseCsvDirectory("", "e.csv")).field).toBe("PrimarySmtpAddress");
    expect(thrown(() => parseCsvDirectory("#TYPE x\r\n", "e.csv")).line).toBe(2);
  });
  it("a CsvDirectory built from records normalises their keys", () => {
    const d = new CsvDirectory([{ primarySmtpAddress: "Z@X.com", samAccountName: "ZED", domain: "Corp", database: "DB", exchangeGuid: "{A7C3E5F1-2345-6789-ABCD-EF0123456789}", emailAddresses: [] }]);
    for (const id of ["z@x.com", "zed", "CORP\\zed", "a7c3e5f1-2345-6789-abcd-ef0123456789"]) expect(d.find(id).status).toBe("found");
    expect(d.lineOf(d.records()[0])).toBeUndefined();
  });
});

describe("KeyIndex", () => {
  it("inserts, replaces (last wins) and finds keys, grows past its hint, and confirms hash matches with the owner", () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
    let asked = 0;
    const idx = new KeyIndex(10, (row, key) => {
      asked++;
      return keys[row] === key;
    });
    keys.forEach((k, i) => idx.set(k, i));
    expect(idx.size).toBe(5000);
    expect(keys.every((k, i) => idx.get(k) === i)).toBe(true);
    expect(idx.get("absent")).toBe(-1);
    idx.set("k7", 7); // same key, same row: replaced, not added
    expect(idx.size).toBe(5000);
    expect(fnv1a("a")).not.toBe(fnv1a("b"));
    expect(asked).toBeGreaterThan(0);
  });
  it("keys whose 32-bit hashes collide stay apart", () => {
    // "Aa" and "BB" differ, but find two strings with the same FNV-1a hash by brute force.
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair && i < 200_000; i++) {
      const s = `key-${i}`;
      const h = fnv1a(s) & 0xffff; // collide on the low 16 bits: same slot, then probe on
      const o = seen.get(h);
      if (o !== undefined) pair = [o, s];
      else seen.set(h, s);
    }
    expect(pair).toBeDefined();
    const [a, b] = pair!;
    const owner = [a, b];
    const idx = new KeyIndex(4, (row, key) => owner[row] === key);
    idx.set(a, 0);
    idx.set(b, 1);
    expect([idx.get(a), idx.get(b), idx.size]).toEqual([0, 1, 2]);
  });
});

describe("text-backed rows", () => {
  it("a row parsed again on look-up is the row checked at load, across many rows and a cache turnover", () => {
    const rows = Array.from({ length: 6000 }, (_, i) => `"u${i}@x.com","DB${i % 7}","Name ""${i}"", with comma","smtp:alias${i}@x.com"`);
    const d = parseCsvDirectory(`"PrimarySmtpAddress","Database","DisplayName","EmailAddresses"\r\n${rows.join("\r\n")}\r\n`, "many.csv");
    expect(d.size).toBe(6000);
    for (const i of [0, 1, 4095, 4096, 5999, 3, 0]) {
      const r = d.find(`ALIAS${i}@x.com`);
      expect(r).toMatchObject({ status: "found", mailbox: { primarySmtpAddress: `u${i}@x.com`, database: `DB${i % 7}`, displayName: `Name "${i}", with comma` } });
      if (r.status === "found") expect(d.lineOf(r.mailbox)).toBe(i + 2);
    }
    expect(d.databases().get("DB0")).toBe(Math.ceil(6000 / 7));
    expect(d.recordsInDatabase("DB3").map((r) => r.primarySmtpAddress).slice(0, 2)).toEqual(["u3@x.com", "u10@x.com"]);
  });
  it("a key on two rows is an error naming both lines, not a silent split (issue 20, finding 8)", () => {
    // Before: the address went to the last row and the sam name to the first, silently.
    const e = thrown(() =>
      parseCsvDirectory(`"PrimarySmtpAddress","Database","SamAccountName","EmailAddresses"\n"a@x.com","DB1","same",""\n"b@x.com","DB2","same","smtp:A@x.com"\n`, "m.csv"),
    );
    expect(e.message).toBe('m.csv:3: (duplicate): "same" is also on line 2: an address, UPN, sam name or ExchangeGuid belongs to one mailbox (and 1 more duplicate key)');
    expect(thrown(() => parseCsvDirectory(`"PrimarySmtpAddress","Database"\n"a@x.com","DB1"\n"c@x.com","DB1"\n"A@X.com","DB2"\n`, "m.csv")).line).toBe(4);
  });
  it("one sam name in two domains is allowed (DOMAIN\\sam tells them apart)", () => {
    const d = parseCsvDirectory(`"PrimarySmtpAddress","Database","SamAccountName","Domain"\n"a@x.com","DB1","same","EAST"\n"b@x.com","DB2","same","WEST"\n`);
    expect(d.find("east\\same")).toMatchObject({ mailbox: { primarySmtpAddress: "a@x.com" } });
    expect(d.find("WEST\\same")).toMatchObject({ mailbox: { primarySmtpAddress: "b@x.com" } });
  });
  it("parts() and fromParts() rebuild the same directory without parsing again", () => {
    const d = parseCsvDirectory(TEXT, "mailboxes.csv");
    const copy = CsvDirectory.fromParts(structuredClone(d.parts()));
    expect(copy.size).toBe(2);
    for (const id of ["alice@contoso.com", "CONTOSO\\alice", "bob", "9f9d51bc-70ef-21ca-5c14-f307980a29d8", "nobody"]) expect(copy.find(id)).toEqual(d.find(id));
    expect(copy.databases()).toEqual(d.databases());
  });
});

describe("loadCsvDirectory reads the file piece by piece", () => {
  const TRICKY =
    `\uFEFF#TYPE Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n` +
    `"PrimarySmtpAddress","Database","DisplayName","EmailAddresses"\r\n` +
    `"zoë@x.com","DB, 1","Zoë ""Z"" 🦊","smtp:zoe@x.com"\r\n` +
    `"b@x.com","DB2","multi\nline\r\nname, with comma","smtp:b2@x.com"\r\n\r\n\n` +
    `"c@x.com","DB3","",""\r\n` +
    `d@x.com,DB4,plain,\r\n` +
    `"e@x.com","DB5","no final line break",""`;

  it.each([1, 3, 7, 16, 64, 1 << 20])("gives the same rows, lines and look-ups as one parse, with %i-byte pieces", async (pieceBytes) => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dirPath = mkdtempSync(join(tmpdir(), "cas-csv-"));
    try {
      const file = join(dirPath, "m.csv");
      writeFileSync(file, TRICKY);
      const whole = parseCsvDirectory(TRICKY, file);
      const pieces = await loadCsvDirectory(file, { pieceBytes });
      const rows = (d: CsvDirectory) => d.records().map((r) => ({ ...r, line: d.lineOf(r) }));
      expect(rows(pieces)).toEqual(rows(whole));
      expect(rows(pieces).map((r) => r.line)).toEqual([3, 4, 9, 10, 11]);
      expect(pieces.find("ZOË@x.com")).toMatchObject({ status: "found", mailbox: { displayName: 'Zoë "Z" 🦊' } });
      expect(pieces.find("b2@x.com")).toMatchObject({ status: "found", mailbox: { displayName: "multi\nline\r\nname, with comma" } });
    } finally {
      rmSync(dirPath, { recursive: true, force: true });
    }
  });

  it("reports an unterminated quote on the line where it opened, however the file is cut", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dirPath = mkdtempSync(join(tmpdir(), "cas-csv-"));
    try {
      const file = join(dirPath, "bad.csv");
      writeFileSync(file, `"PrimarySmtpAddress","Database"\n"a@x.com","DB"\n"b@x.com","open\nstill\nopen\n`);
      for (const pieceBytes of [4, 1 << 20]) {
        const e = await loadCsvDirectory(file, { pieceBytes }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(CsvDirectoryError);
        expect([(e as CsvDirectoryError).line, (e as CsvDirectoryError).field]).toEqual([3, "(csv)"]);
      }
    } finally {
      rmSync(dirPath, { recursive: true, force: true });
    }
  });
});
