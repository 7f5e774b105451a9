// One definition per command-line option: its flags, help text, default and zod schema together.
// A component's options are a group (directory, sidecar, mail proxy, ...); every command that runs
// the component adds the whole group, so `sidecar`, `mail-proxy` and `standalone` cannot drift
// apart, and `--help` shows what the command parses. Add an option = add one entry to its group.
import { Option, type Command } from "commander";
import { z } from "zod";
import { UsageError } from "../errors.js";

export interface OptionDef {
  /** commander flags: "--lookup-timeout-ms <ms>", "--ldap-starttls", "--no-starttls". */
  readonly flags: string;
  readonly help: string;
  /** Value when the flag is absent (shown by --help); strings as typed on the command line. */
  readonly default?: DefaultValue;
  /** May be given several times; the values are collected into an array (default []). */
  readonly repeatable?: boolean;
  readonly required?: boolean;
  /** Parses what commander gives (a string, true/false for switches, string[] when repeatable). */
  readonly schema: z.ZodType;
}

export interface OptionGroup<D extends Record<string, OptionDef> = Record<string, OptionDef>> {
  /** Name used in docs/cli.md's section for the group. */
  readonly name: string;
  readonly options: D;
  /**
   * zod shape of the group, keyed by commander's attribute names (spread into a command's z.object).
   * An option with a default parses it when absent, so programmatic callers get commander's defaults.
   */
  readonly shape: { [K in keyof D]: D[K] extends { readonly default: DefaultValue } ? z.ZodPrefault<D[K]["schema"]> : D[K]["schema"] };
}

type DefaultValue = string | boolean | readonly string[];

export function defineOptions<const D extends Record<string, OptionDef>>(name: string, options: D): OptionGroup<D> {
  const shape = Object.fromEntries(Object.entries(options).map(([k, d]) => [k, d.default === undefined ? d.schema : d.schema.prefault(d.default)]));
  return { name, options, shape: shape as OptionGroup<D>["shape"] };
}

/** The commander Option for one definition; its attribute name must be the definition's key. */
function toOption(key: string, d: OptionDef): Option {
  const o = new Option(d.flags, d.help);
  if (o.attributeName() !== key) throw new Error(`option ${d.flags} is defined under "${key}" but commander calls it "${o.attributeName()}"`);
  if (d.repeatable) o.argParser((v: string, acc: string[] | undefined) => [...(acc ?? []), v]).default(d.default ?? []);
  else if (d.default !== undefined) o.default(d.default);
  if (d.required) o.makeOptionMandatory();
  return o;
}

/** Add every option of the groups to a command. */
export function addOptions(cmd: Command, ...groups: readonly OptionGroup[]): Command {
  for (const g of groups) for (const [k, d] of Object.entries(g.options)) cmd.addOption(toOption(k, d));
  return cmd;
}

/** lookupTimeoutMs -> --lookup-timeout-ms */
export function flagName(attribute: string): string {
  return `--${attribute.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Parse commander's options with a command's schema; the first problem becomes "--flag: message". */
export function parseFlags<S extends z.ZodType>(schema: S, raw: Record<string, unknown>): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const i = parsed.error.issues[0];
  throw new UsageError(`${flagName(String(i?.path[0] ?? "?"))}: ${i?.message ?? "invalid"}`); // exit 2
}

/** Schemas for values commander gives as strings. */
export const opt = {
  int: (min: number, max: number) => z.coerce.number().int().min(min).max(max),
  file: z.string().min(1),
  text: z.string().min(1),
  flag: z.boolean(),
} as const;
