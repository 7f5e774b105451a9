// The mailbox GUIDs of the test data can tell a right msExchMailboxGuid byte order from a wrong one:
// they are distinct, none is a byte palindrome in its first three fields (where AD's order differs
// from the text's), and the LDAP fixture's bytes — and the directory's own conversion — agree with
// Python's uuid.bytes_le, an implementation of Windows' GUID layout that is not ours.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bytesToGuid, guidToBytes } from "../../sidecar/directory/ldap-directory.js";
import { mailboxGuidOf } from "../../sidecar/decision/identity.js";
import { adGuidBytes, bulkGuid, CONTOSO_DIR, contosoTopology, contosoUsers, misreadGuid, YAMADA_GUID, YAMADA_GUID_AD_HEX } from "./fixtures.js";

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

async function fixtureGuids(): Promise<{ csv: string[]; ldap: string[]; bulk: string[] }> {
  const csv = (readFileSync(join(CONTOSO_DIR, "mailboxes.csv"), "utf8").match(GUID) ?? []).map((g) => g.toLowerCase());
  const ldap = (await contosoUsers(await contosoTopology())).flatMap((u) => (u.guid ? [u.guid.toLowerCase()] : []));
  const bulk = Array.from({ length: 2000 }, (_, i) => bulkGuid(i));
  return { csv, ldap, bulk };
}

function pythonBytesLe(guids: readonly string[]): string[] {
  const py = "import sys, uuid\nfor line in sys.stdin.read().split():\n    print(uuid.UUID(line).bytes_le.hex())\n";
  return execFileSync("python3", ["-c", py], { input: guids.join("\n"), encoding: "utf8", timeout: 30_000 }).trim().split("\n");
}

describe("mailbox GUIDs of the fixtures", () => {
  it("are distinct, and none repeats one digit through a field", async () => {
    const { csv, ldap, bulk } = await fixtureGuids();
    expect(csv).toHaveLength(12);
    expect(ldap.length).toBeGreaterThan(csv.length); // the CSV's users plus LDAP-only ones
    const all = [...new Set([...ldap, ...csv]), ...bulk];
    expect(new Set(all).size).toBe(all.length);
    for (const g of all) for (const field of g.split("-")) expect(/^(.)\1*$/.test(field), `${g}: field ${field}`).toBe(false);
  });

  it("read in the wrong byte order, every one becomes a GUID no fixture user has", async () => {
    const { csv, ldap, bulk } = await fixtureGuids();
    const all = new Set([...csv, ...ldap, ...bulk]);
    for (const g of all) {
      const wrong = misreadGuid(g);
      expect(wrong, g).not.toBe(g);
      expect(all.has(wrong), `${g} misread is ${wrong}, also a fixture GUID`).toBe(false);
    }
  });

  it("the LDAP fixture's bytes and the directory's conversion both ways agree with Python's uuid.bytes_le", async () => {
    const { ldap, bulk } = await fixtureGuids();
    const guids = [...ldap, ...bulk.slice(0, 200)];
    const py = pythonBytesLe(guids);
    expect(py).toHaveLength(guids.length);
    guids.forEach((g, i) => {
      expect(adGuidBytes(g).toString("hex"), `fixture ${g}`).toBe(py[i]);
      expect(guidToBytes(g)?.toString("hex"), `guidToBytes ${g}`).toBe(py[i]);
      expect(bytesToGuid(Buffer.from(py[i], "hex")), `bytesToGuid ${py[i]}`).toBe(g);
    });
    expect(adGuidBytes(YAMADA_GUID).toString("hex")).toBe(YAMADA_GUID_AD_HEX);
  });

  it("AD's bytes → the <GUID>@domain Outlook sends (MAPI MailboxId, RPC proxy target) → the same bytes in the filter", () => {
    const text = bytesToGuid(Buffer.from(YAMADA_GUID_AD_HEX, "hex"));
    expect(text).toBe(YAMADA_GUID);
    for (const sent of [`${text}@contoso.com`, `${text?.toUpperCase()}@contoso.com`, `${text}@contoso.com:6001`]) {
      const id = mailboxGuidOf(sent);
      expect(id, sent).toBe(YAMADA_GUID);
      expect(guidToBytes(id ?? "")?.toString("hex"), sent).toBe(YAMADA_GUID_AD_HEX);
    }
  });
});
