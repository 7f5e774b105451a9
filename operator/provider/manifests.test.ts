import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_UNKNOWN_FIELDS_NAMED, formatError, listManifestFiles, loadManifestDir, locate, parseManifestText } from "./manifests.js";
import { loadOrganisation } from "./organisation.js";

const errs = (text: string) => parseManifestText(text, "m.yaml").errors.map(formatError);

const CAS = `apiVersion: casgateway.io/v1alpha1
kind: ClientAccessServer
metadata:
  name: cas01
spec:
  site: usa
  fqdn: cas01.usa.contoso.com
  exchangeVersion: "2010"
  roles:
    - ClientAccess
`;

describe("parseManifestText", () => {
  it("parses a valid object, applying defaults", () => {
    const set = parseManifestText(CAS, "m.yaml");
    expect(set.errors).toEqual([]);
    expect(set.objects[0].object).toMatchObject({ kind: "ClientAccessServer", spec: { maintenance: false, tls: { insecureSkipVerify: false } } });
    expect(set.objects[0].location).toEqual({ file: "m.yaml", line: 1, column: 1 });
    expect(set.objects[0].fieldLocation("spec.roles.0")).toEqual({ file: "m.yaml", line: 10, column: 7 });
    // An absent field points at its nearest ancestor.
    expect(set.objects[0].fieldLocation("spec.address")).toEqual({ file: "m.yaml", line: 6, column: 3 });
  });

  it("unknown fields are errors at the key's line and column, with the nearest valid name (strict, as kubectl)", () => {
    const text = CAS.replace('  exchangeVersion: "2010"\n', '  exchangeVersion: "2010"\n  maintenence: true\n  tls:\n    insecureSkipVerifyy: true\n');
    expect(errs(text)).toEqual([
      'm.yaml:9:3: ClientAccessServer/cas01: spec.maintenence: unknown field "maintenence"; did you mean maintenance?',
      'm.yaml:11:5: ClientAccessServer/cas01: spec.tls.insecureSkipVerifyy: unknown field "insecureSkipVerifyy"; did you mean insecureSkipVerify?',
    ]);
    // The object is refused, not taken without the field.
    expect(parseManifestText(text, "m.yaml").objects).toEqual([]);
  });

  it("a database whose activeServer is not one of its servers lists them", () => {
    const db = `apiVersion: casgateway.io/v1alpha1
kind: MailboxDatabase
metadata:
  name: db1
spec:
  activeServer: mbx03
  servers: [mbx01, mbx02]
`;
    expect(errs(db)).toEqual([
      'm.yaml:6:17: MailboxDatabase/db1: spec.activeServer: activeServer must be one of servers: "mbx03" is not in [mbx01, mbx02]; add it to servers or pick one of them',
    ]);
  });

  it("schema errors carry the line and column of the offending value", () => {
    expect(errs(CAS.replace('"2010"', '"2005"'))).toEqual([
      'm.yaml:8:20: ClientAccessServer/cas01: spec.exchangeVersion: Invalid option: expected one of "2003"|"2007"|"2010"|"2013"|"2016"|"2019"',
    ]);
    expect(errs(CAS.replace("    - ClientAccess\n", "    - ClientAccess\n    - Frontend\n"))).toEqual([
      'm.yaml:11:7: ClientAccessServer/cas01: spec.roles.1: Invalid option: expected one of "ClientAccess"|"Mailbox"',
    ]);
  });

  it("a missing required field points at its parent", () => {
    expect(errs(CAS.replace("  fqdn: cas01.usa.contoso.com\n", ""))).toEqual([
      "m.yaml:6:3: ClientAccessServer/cas01: spec.fqdn: is required",
    ]);
  });

  it("cross-field rules point at the field they name", () => {
    const text = `apiVersion: casgateway.io/v1alpha1
kind: VirtualDirectory
metadata:
  name: ews
spec:
  server: cas01
  service: Ews
  internalUrl: https://cas01.usa.contoso.com/EWS/Exchange.asmx
  crossSiteRedirectType: Silent
`;
    expect(errs(text)).toEqual(["m.yaml:9:26: VirtualDirectory/ews: spec.crossSiteRedirectType: crossSiteRedirectType applies to Owa and Ecp only"]);
  });

  it("YAML syntax errors: line and column, other documents of the file still load", () => {
    const text = `${CAS}---
apiVersion: casgateway.io/v1alpha1
kind: ADSite
metadata:
  name: usa
spec:
\thostnames: []
`;
    const set = parseManifestText(text, "m.yaml");
    expect(set.objects.map((o) => o.object.metadata.name)).toEqual(["cas01"]);
    expect(set.errors.map(formatError)).toEqual(["m.yaml:17:1: (yaml): Tabs are not allowed as indentation"]);
    expect(errs("a: 1\na: 2\n")).toEqual(['m.yaml:2:1: (yaml): Map keys must be unique: "a" is already on line 1']);
    expect(errs(`${CAS}---\n${CAS.replace("  site: usa\n", "  site: usa\n  roles: []\n")}`)).toEqual([
      'm.yaml:21:3: (yaml): Map keys must be unique: "roles" is already on line 18',
    ]);
  });

  it("other API groups are ignored; a wrong version or kind of ours is an error", () => {
    const text = `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
data:
  a: b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: y
---
apiVersion: casgateway.io/v1beta1
kind: ADSite
metadata:
  name: z
---
apiVersion: casgateway.io/v1alpha1
kind: Mailbox
metadata:
  name: w
---
---
# only a comment
`;
    const set = parseManifestText(text, "m.yaml");
    expect(set.objects).toEqual([]);
    expect(set.errors.map(formatError)).toEqual([
      'm.yaml:13:13: ADSite/z: apiVersion: unsupported version "casgateway.io/v1beta1"; this gateway serves casgateway.io/v1alpha1',
      'm.yaml:19:7: Mailbox/w: kind: unknown kind "Mailbox"; expected one of ADSite, ClientAccessServer, VirtualDirectory, MailboxDatabase, OrganizationRelationship',
    ]);
  });

  it("documents of other API groups are passed over without being parsed (issue 20, finding 1)", () => {
    // The ConfigMap's body is not even valid YAML: it is never parsed, so it gives no error.
    const foreign = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  x: [unclosed\n  y: {\n`;
    const set = parseManifestText(`${foreign}---\n${CAS}---\n"apiVersion": v1\nkind: [\n`, "m.yaml");
    expect(set.objects.map((o) => o.object.metadata.name)).toEqual(["cas01"]);
    // Not plainly foreign (a quoted key): parsed in full, so its syntax error is reported, on its own line.
    expect(set.errors.map(formatError)).toEqual(["m.yaml:21:1: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]"]);
    // Lines after skipped documents stay right.
    expect(set.objects[0].fieldLocation("spec.roles.0")).toEqual({ file: "m.yaml", line: 17, column: 7 });
  });

  it("duplicate-key checking is linear: 4x the keys costs about 4x, not 16x (issue 20, finding 1)", () => {
    const doc = (n: number) => {
      const lines = ["apiVersion: casgateway.io/v1alpha1", "kind: ADSite", "metadata:", "  name: x", "spec:", "  hostnames: []", "  junk:"];
      for (let i = 0; i < n; i++) lines.push(`    k${i}: ${i}`);
      return `${lines.join("\n")}\n`;
    };
    const time = (n: number) => {
      const text = doc(n);
      const t0 = performance.now();
      const set = parseManifestText(text, "m.yaml");
      expect(set.errors.length + set.objects.length).toBeGreaterThan(0);
      return performance.now() - t0;
    };
    time(2000); // warm-up
    const small = Math.min(time(5_000), time(5_000));
    const big = Math.min(time(20_000), time(20_000));
    // Quadratic was 8.7 s for 20,000 keys; generous bounds for a loaded machine.
    expect(big).toBeLessThan(10_000);
    expect(big / Math.max(small, 1)).toBeLessThan(10);
  });

  it("a document that is not a mapping is an error", () => {
    expect(errs("- just\n- a list\n")).toEqual(["m.yaml:1:1: (document): a manifest must be a YAML mapping (an object)"]);
  });

  it("applies the default namespace to objects that name none", () => {
    const set = parseManifestText(CAS, "m.yaml", { defaultNamespace: "exchange" });
    expect(set.objects[0].object.metadata.namespace).toBe("exchange");
  });

  it("does not throw on garbage", () => {
    for (const junk of ["\u0000\u0001\u0002", "{{{{", "]]]", "&a [*a, *a]", "? ? ?", "x".repeat(10000)]) {
      expect(() => parseManifestText(junk, "m.yaml")).not.toThrow();
    }
  });
});

describe("loadManifestDir / loadOrganisation", () => {
  const root = mkdtempSync(join(tmpdir(), "cas-manifests-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads *.yaml, *.yml and *.json recursively, sorted, skipping hidden entries", async () => {
    mkdirSync(join(root, "sub"));
    mkdirSync(join(root, ".git"));
    writeFileSync(join(root, "b.yaml"), CAS);
    writeFileSync(join(root, "a.yml"), "apiVersion: casgateway.io/v1alpha1\nkind: ADSite\nmetadata:\n  name: usa\nspec: {}\n");
    writeFileSync(
      join(root, "sub", "c.json"),
      JSON.stringify({ apiVersion: "casgateway.io/v1alpha1", kind: "ADSite", metadata: { name: "asia" }, spec: { hostnames: [] } }),
    );
    writeFileSync(join(root, ".hidden.yaml"), "not: [valid");
    writeFileSync(join(root, ".git", "x.yaml"), "not: [valid");
    writeFileSync(join(root, "notes.txt"), "ignored");
    expect((await listManifestFiles(root)).map((f) => f.slice(root.length + 1))).toEqual(["a.yml", "b.yaml", "sub/c.json"]);
    const set = await loadManifestDir(root);
    expect(set.errors).toEqual([]);
    expect(set.objects.map((o) => o.object.metadata.name)).toEqual(["usa", "cas01", "asia"]);
    expect(locate(set, "ClientAccessServer", "cas01")?.location.file).toBe(join(root, "b.yaml"));
  });

  it("places topology problems at the file and line of the field", async () => {
    writeFileSync(join(root, "b.yaml"), CAS.replace("site: usa", "site: europe"));
    const org = await loadOrganisation(root);
    expect(org.errors.map(formatError)).toEqual([
      `${join(root, "b.yaml")}:6:9: ClientAccessServer/cas01: spec.site: ADSite "europe" does not exist`,
    ]);
  });
});

// Found in round two: each unknown field was located by a scan of its mapping, so a document with
// N unknown keys cost N^2/2 comparisons (500,000 keys: over 7 minutes of CPU, 1 GB, still running)
// and N messages listing every known field. Now the first few are named and the rest counted.
describe("a document with very many unknown fields (issue 20)", () => {
  it("names the first ones with file:line and counts the rest in one error", () => {
    const n = 60_000;
    const lines = ["apiVersion: casgateway.io/v1alpha1", "kind: ADSite", "metadata:", "  name: huge", "spec:"];
    for (let i = 0; i < n; i++) lines.push(`  key${i}: v${i}`);
    const set = parseManifestText(`${lines.join("\n")}\n`, "huge.yaml");
    expect(set.objects).toEqual([]);
    expect(set.errors).toHaveLength(MAX_UNKNOWN_FIELDS_NAMED + 1);
    expect(formatError(set.errors[0])).toBe('huge.yaml:6:3: ADSite/huge: spec.key0: unknown field "key0"; known fields here: ' + set.errors[0].message.split("known fields here: ")[1]);
    expect(formatError(set.errors[MAX_UNKNOWN_FIELDS_NAMED])).toBe(
      `huge.yaml:${6 + MAX_UNKNOWN_FIELDS_NAMED}:3: ADSite/huge: spec.key${MAX_UNKNOWN_FIELDS_NAMED}: and ${n - MAX_UNKNOWN_FIELDS_NAMED} more unknown fields in this object (the first ${MAX_UNKNOWN_FIELDS_NAMED} are named)`,
    );
  }, 60_000);
});
