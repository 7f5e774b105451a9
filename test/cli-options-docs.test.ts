// docs/cli.md against every component command's --help: the same options, the same defaults, and
// each option group taken by the commands the page says take it (issue 25: `standalone` lacked
// options the docs gave it).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, type Option } from "commander";
import { describe, expect, it } from "vitest";
import { registerCommands } from "../cli/commands/index.js";
import { configInputOptions, directoryOptions, envoyListenerOptions, mailProxyOptions, sidecarOptions, xdsClientOptions, type OptionGroup } from "../cli/options/index.js";

const ROOT = join(import.meta.dirname, "..");
const DOC = readFileSync(join(ROOT, "docs", "cli.md"), "utf8");
const GROUPS: Record<string, OptionGroup> = Object.fromEntries([directoryOptions, sidecarOptions, mailProxyOptions, configInputOptions, envoyListenerOptions, xdsClientOptions].map((g) => [g.name, g]));

interface DocRow {
  readonly flag: string;
  readonly defaultCell: string;
}

/** The markdown section under a heading (up to the next heading of the same or a higher level). */
function section(heading: string): string {
  const lines = DOC.split("\n");
  const at = lines.findIndex((l) => l.trim() === heading);
  if (at < 0) throw new Error(`docs/cli.md has no heading "${heading}"`);
  const level = heading.match(/^#+/)![0].length;
  const end = lines.findIndex((l, i) => i > at && /^#+ /.test(l) && l.match(/^#+/)![0].length <= level);
  return lines.slice(at + 1, end < 0 ? undefined : end).join("\n");
}

/** Rows of the option tables in a section: `| \`--flag <arg>\` | default | meaning |`. */
function rows(text: string): DocRow[] {
  const out: DocRow[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^\| `(--[a-z0-9-]+)[^`]*` \| ([^|]*) \|/);
    if (m) out.push({ flag: m[1]!, defaultCell: m[2]!.trim() });
  }
  return out;
}

/** Long flags that a --help text lists (the left column), without --help itself. */
function helpFlags(help: string): string[] {
  const flags: string[] = [];
  for (const line of help.split("\n")) {
    const m = line.match(/^ {2}(?:-[a-zA-Z], )?(--[a-z0-9-]+)/);
    if (m && m[1] !== "--help" && m[1] !== "--version") flags.push(m[1]);
  }
  return flags;
}

function program(): Command {
  const p = new Command().name("cas-gateway");
  registerCommands(p);
  return p;
}

const COMMANDS = [...DOC.matchAll(/^### `cas-gateway ([a-z-]+)`$/gm)].map((m) => m[1]!);

describe("docs/cli.md agrees with --help", () => {
  it("documents the three component commands", () => {
    expect(COMMANDS).toEqual(expect.arrayContaining(["sidecar", "mail-proxy", "standalone"]));
  });

  it("each group's table is the group's definition", () => {
    for (const g of Object.values(GROUPS)) {
      const title = `### ${g.name[0]!.toUpperCase()}${g.name.slice(1)} options`;
      const documented = rows(section(title)).map((r) => r.flag);
      const defined = Object.values(g.options).map((d) => d.flags.match(/--[a-z0-9-]+/)![0]);
      expect(documented, `${title} in docs/cli.md`).toEqual(defined);
    }
  });

  for (const name of COMMANDS) {
    it(`cas-gateway ${name} --help lists exactly the documented options, with the documented defaults`, () => {
      const cmd = program().commands.find((c) => c.name() === name);
      expect(cmd, `command ${name}`).toBeDefined();
      const text = section(`### \`cas-gateway ${name}\``);
      const groups = (text.match(/^Option groups: (.+?)\./m)?.[1] ?? "").split(", ").filter(Boolean);
      for (const g of groups) expect(GROUPS[g], `group "${g}" named for ${name}`).toBeDefined();
      const docRows = [...rows(text), ...groups.flatMap((g) => rows(section(`### ${g[0]!.toUpperCase()}${g.slice(1)} options`)))];
      const help = helpFlags(cmd!.helpInformation());
      const missingFromDocs = help.filter((f) => !docRows.some((r) => r.flag === f));
      const notInHelp = docRows.map((r) => r.flag).filter((f) => !help.includes(f));
      expect(missingFromDocs, `${name}: in --help but not in docs/cli.md (add a row)`).toEqual([]);
      expect(notInHelp, `${name}: in docs/cli.md but not in --help`).toEqual([]);
      // Defaults: a string default is shown in backticks; none (or a switch) is not a backticked value.
      for (const o of cmd!.options as readonly Option[]) {
        const row = docRows.find((r) => r.flag === o.long);
        if (!row) continue;
        if (typeof o.defaultValue === "string" && !o.defaultValueDescription) {
          expect(row.defaultCell, `${name} ${o.long} default`).toBe(`\`${o.defaultValue}\``);
        } else if (o.defaultValue === undefined || Array.isArray(o.defaultValue)) {
          expect(row.defaultCell, `${name} ${o.long} has no default value`).not.toMatch(/^`[^`]*`$/);
        }
      }
    });
  }

  it("the table at the top names the groups each command takes", () => {
    const table = DOC.slice(0, DOC.indexOf("## Option groups"));
    for (const name of COMMANDS) {
      const m = table.match(new RegExp(`^\\| \`${name}\` \\| ([^|]+) \\|`, "m"));
      const text = section(`### \`cas-gateway ${name}\``);
      expect(m?.[1]?.trim(), `${name} in the table`).toBe(text.match(/^Option groups: (.+?)\./m)?.[1]);
    }
  });

  it("the built command line shows standalone's component options (node cli/main.ts standalone --help)", async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", "standalone", "--help"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.on("data", (b: Buffer) => (text += b.toString()));
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
    });
    const flags = helpFlags(out);
    for (const f of ["--lookup-timeout-ms", "--on-directory-failure", "--backend-ca", "--tls-cert", "--tls-key", "--front-door-host", "--affinity-ttl", "--ldap-timeout-ms"]) {
      expect(flags).toContain(f);
    }
  }, 60_000);
});
