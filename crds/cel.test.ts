// Every CEL rule (x-kubernetes-validations) in the generated CRDs, evaluated with @bufbuild/cel
// against sample objects: the example organisation (examples/contoso, every object valid) must pass
// each rule at its place in the schema, and for each rule a mutated object must fail it — and the zod
// schema (the one source, used for files and the xDS feed) must refuse the same object, so CEL and
// zod say the same thing. A rule without refusal samples fails the test.
//
// Where @bufbuild/cel differs from the API server's CEL environment (see docs/kubernetes.md, "CEL
// rules"): no type-check of the rule against the OpenAPI schema and no cost estimate (the API server
// refuses a CRD whose rules do not type-check or may cost too much; crds.test.ts keeps maxLength on
// strings and maxItems on lists, which the estimate needs); none of Kubernetes' CEL libraries (url(),
// isURL(), quantity(), the lists and regex extensions) or transition rules (oldSelf), so the rules
// use only standard CEL; `matches` runs JavaScript regular expressions here and RE2 there, so
// patterns stay in the common subset (no look-around, no back-references; checked below).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { run, isCelError } from "@bufbuild/cel";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { CRD_DIR, isRe2Compatible, type JsonSchema } from "./generate.js";
import { HTTP_URL_CEL, KIND_SCHEMAS, httpUrl, isKind, type Kind } from "./index.js";

interface RuleAt {
  kind: Kind;
  /** Path from the object root, "." separated; "[]" steps into list items. */
  path: string;
  rule: string;
  message: string;
}

function rulesIn(schema: JsonSchema, kind: Kind, path: string, out: RuleAt[]): void {
  for (const v of (schema["x-kubernetes-validations"] ?? []) as { rule: string; message: string }[]) out.push({ kind, path, ...v });
  for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) rulesIn(v, kind, path ? `${path}.${k}` : k, out);
  if (schema.items) rulesIn(schema.items as JsonSchema, kind, `${path}[]`, out);
}

const RULES: RuleAt[] = [];
for (const f of readdirSync(CRD_DIR).filter((n) => /^casgateway\.io_.*\.yaml$/.test(n))) {
  const crd = parse(readFileSync(join(CRD_DIR, f), "utf8")) as { spec: { names: { kind: string }; versions: { schema: { openAPIV3Schema: JsonSchema } }[] } };
  const kind = crd.spec.names.kind;
  if (!isKind(kind)) throw new Error(`${f}: unknown kind ${kind}`);
  rulesIn(crd.spec.versions[0].schema.openAPIV3Schema, kind, "", RULES);
}

type Obj = Record<string, unknown>;
const EXAMPLES: Obj[] = readdirSync(join(CRD_DIR, "..", "examples", "contoso"))
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(CRD_DIR, "..", "examples", "contoso", f), "utf8")).map((d) => d.toJS() as Obj))
  .filter((o) => o && isKind(o.kind));

/** The values at `path` in `obj` (a list step fans out; absent fields give nothing, as the API server skips them). */
function at(obj: unknown, path: string): unknown[] {
  let cur: unknown[] = [obj];
  for (const step of path.split(".").filter(Boolean)) {
    const list = step.endsWith("[]");
    const key = list ? step.slice(0, -2) : step;
    cur = cur.flatMap((v) => {
      const x = v !== null && typeof v === "object" ? (v as Obj)[key] : undefined;
      // The API server evaluates no rule on an absent or null value.
      if (x === undefined || x === null) return [];
      return list ? (Array.isArray(x) ? x : []) : [x];
    });
  }
  return cur;
}

function evaluate(rule: string, self: unknown): boolean {
  const r = run(rule, { self: self as never });
  if (isCelError(r)) throw new Error(`CEL error in ${rule}: ${String(r.message ?? r)}`);
  if (typeof r !== "boolean") throw new Error(`CEL rule ${rule} gave ${String(r)}, not a bool`);
  return r;
}

const example = (kind: Kind, pick: (o: Obj) => boolean = () => true): Obj => {
  const o = EXAMPLES.find((x) => x.kind === kind && pick(x));
  if (!o) throw new Error(`examples/contoso has no matching ${kind}`);
  return structuredClone(o);
};
const spec = (o: Obj) => o.spec as Obj;
const service = (s: string) => (o: Obj) => spec(o).service === s;

/** Per rule message: objects that must fail that rule (and zod). */
const REFUSED: Record<string, () => Obj[]> = {
  "must be an absolute http:// or https:// URL without credentials": () =>
    ["ftp://mail.contoso.com/owa", "https://user:pw@mail.contoso.com/owa", "mail.contoso.com/owa", "https:///owa", "https://mail contoso.com/owa"].map((u) => {
      const o = example("VirtualDirectory", service("Owa"));
      spec(o).internalUrl = u;
      return o;
    }),
  "activeServer must be one of servers": () => {
    const o = example("MailboxDatabase");
    spec(o).activeServer = "not-a-member";
    return [o];
  },
  "offlineAddressBooks must not name one guid twice": () => {
    const o = example("MailboxDatabase");
    const oab = { guid: "8a3f3e5e-1c1e-4d55-9c62-2f3c2b8a4e11", generatingMailbox: "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com" };
    spec(o).offlineAddressBooks = [oab, { ...oab, name: "again" }];
    return [o];
  },
  "crossSiteRedirectType applies to Owa and Ecp only": () => {
    const o = example("VirtualDirectory", service("ActiveSync"));
    spec(o).crossSiteRedirectType = "Silent";
    return [o];
  },
  "exchange2003Url applies to Owa only": () => {
    const o = example("VirtualDirectory", service("Ews"));
    spec(o).exchange2003Url = "https://legacy.contoso.com/exchange";
    return [o];
  },
  "legacyRedirectType applies to Owa only": () => {
    const o = example("VirtualDirectory", service("Ecp"));
    spec(o).legacyRedirectType = "Manual";
    return [o];
  },
  "redirectToOptimalOwaServer applies to Owa only": () => {
    const o = example("VirtualDirectory", service("Ews"));
    spec(o).redirectToOptimalOwaServer = false;
    return [o];
  },
  "internalConnectionSettings is required for Pop3 and Imap4": () => {
    const o = example("VirtualDirectory", service("Imap4"));
    delete spec(o).internalConnectionSettings;
    const p = example("VirtualDirectory", service("Pop3"));
    spec(p).internalConnectionSettings = [];
    return [o, p];
  },
  "internalConnectionSettings/externalConnectionSettings apply to Pop3 and Imap4 only": () => {
    const o = example("VirtualDirectory", service("Owa"));
    spec(o).internalConnectionSettings = [{ hostname: "cas01.contoso.com", port: 993, encryption: "SSL" }];
    return [o];
  },
  "internalNLBBypassUrl is not available on Exchange 2003": () => {
    const o = example("ClientAccessServer");
    spec(o).exchangeVersion = "2003";
    spec(o).internalNLBBypassUrl = "https://cas01.contoso.com/ews/exchange.asmx";
    return [o];
  },
  "internalUrl is required for HTTP services": () => {
    const o = example("VirtualDirectory", service("Owa"));
    delete spec(o).internalUrl;
    return [o];
  },
  "roles must not repeat": () => {
    const o = example("ClientAccessServer");
    spec(o).roles = ["ClientAccess", "Mailbox", "ClientAccess"];
    return [o];
  },
};

describe("CEL rules of the generated CRDs, evaluated with @bufbuild/cel", () => {
  it("finds the rules, the URL rule on every URL field among them", () => {
    expect(RULES.length).toBeGreaterThanOrEqual(10);
    const urlFields = RULES.filter((r) => r.rule === HTTP_URL_CEL).map((r) => `${r.kind}.${r.path}`);
    expect(urlFields).toEqual(expect.arrayContaining(["VirtualDirectory.spec.internalUrl", "VirtualDirectory.spec.externalUrl", "ClientAccessServer.spec.internalNLBBypassUrl"]));
    for (const r of RULES) for (const m of r.rule.matchAll(/matches\(r'([^']*)'\)/g)) expect(isRe2Compatible(m[1]), r.rule).toBe(true);
  });

  it("every rule parses and holds for every object of the example organisation", () => {
    expect(EXAMPLES.length).toBeGreaterThan(10);
    let evaluated = 0;
    for (const r of RULES) {
      for (const o of EXAMPLES.filter((x) => x.kind === r.kind)) {
        for (const self of at(o, r.path)) {
          evaluated++;
          expect(evaluate(r.rule, self), `${r.kind} ${String((o.metadata as Obj).name)} ${r.path}: ${r.message}`).toBe(true);
        }
      }
    }
    expect(evaluated).toBeGreaterThan(50);
  });

  it("every rule refuses its samples, and the zod schema refuses the same objects", () => {
    const messages = [...new Set(RULES.map((r) => r.message))].sort();
    expect(messages.filter((m) => !(m in REFUSED))).toEqual([]); // a new rule needs refusal samples here
    for (const message of messages) {
      const rules = RULES.filter((r) => r.message === message);
      for (const o of REFUSED[message]!()) {
        const verdicts = rules.flatMap((r) => (r.kind === o.kind ? at(o, r.path).map((self) => evaluate(r.rule, self)) : []));
        expect(verdicts.length, message).toBeGreaterThan(0);
        expect(verdicts.includes(false), `${message}: ${JSON.stringify(o.spec)}`).toBe(true);
        const z = KIND_SCHEMAS[o.kind as Kind].safeParse(o);
        expect(z.success, `zod accepts what CEL refuses (${message})`).toBe(false);
      }
    }
  });

  it("the URL rule and the zod URL check agree on a spread of strings", () => {
    const samples = [
      "https://mail.contoso.com/owa",
      "http://cas01:80/ews/exchange.asmx",
      "HTTPS://MAIL.CONTOSO.COM/OWA",
      "https://[2001:db8::1]:8443/owa?x=1#f",
      "https://10.0.0.1/",
      "https://mail.contoso.com",
      "ftp://mail.contoso.com/",
      "https://u@mail.contoso.com/",
      "https://u:p@mail.contoso.com/",
      "//mail.contoso.com/owa",
      "https:/mail.contoso.com",
      "https://",
      "https://mail.contoso.com:443/owa",
      "mailto:a@b.c",
      "",
    ];
    for (const s of samples) expect(evaluate(HTTP_URL_CEL, s), s).toBe(httpUrl.safeParse(s).success);
  });
});
