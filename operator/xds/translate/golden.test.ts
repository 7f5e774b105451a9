// Golden files: operator/xds/testdata/in/<name>.yaml (manifests, plus optional <name>.options.yaml)
// → operator/xds/testdata/out/<name>.yaml (every served resource, proto3 JSON, as YAML).
// Regenerate with `UPDATE_GOLDEN=1 npx vitest run operator/xds/translate` and review the diff.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { resourcesToYaml, translate } from "./index.js";
import { IN, OUT, goldenCase } from "./testing.js";

const cases = readdirSync(IN)
  .filter((f) => f.endsWith(".yaml") && !f.endsWith(".options.yaml"))
  .map((f) => f.slice(0, -".yaml".length))
  .sort();

describe("xDS golden files", () => {
  it("has the cases the issue asks for", () => {
    expect(cases).toEqual(expect.arrayContaining(["contoso", "one-site", "mixed-version", "insecure", "no-health-checks"]));
  });
  it("in/contoso.yaml is the copy of examples/contoso its first line says it is", () => {
    const dir = path.join(IN, "../../../../examples/contoso");
    const copy = ["sites", "site-usa", "site-europe", "site-asia", "databases"].map((f) => `---\n${readFileSync(path.join(dir, `${f}.yaml`), "utf8")}`).join("");
    const text = readFileSync(path.join(IN, "contoso.yaml"), "utf8");
    expect(text.slice(text.indexOf("\n") + 1), "regenerate: concatenate examples/contoso/{sites,site-usa,site-europe,site-asia,databases}.yaml").toBe(copy);
  });
  for (const name of cases) {
    it(`${name}: resources match testdata/out/${name}.yaml`, () => {
      const { topology, options } = goldenCase(name);
      const res = translate(topology, options);
      expect(res.problems).toEqual([]);
      const text = resourcesToYaml(res);
      const out = path.join(OUT, `${name}.yaml`);
      if (process.env.UPDATE_GOLDEN) writeFileSync(out, text);
      expect(existsSync(out), `missing ${out}: run UPDATE_GOLDEN=1 npx vitest run operator/xds/translate`).toBe(true);
      expect(text).toBe(readFileSync(out, "utf8"));
    });
  }
});
