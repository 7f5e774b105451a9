// Strict field checking against the zod schemas, as kubectl's strict field validation does it.
// zod objects strip keys they do not know, which turns a typo (`externalURL`, `maintenence`) into a
// silent misconfiguration; this walks the schema beside the raw value and names every key no schema
// declares, with the nearest declared name as a suggestion. Loose objects (ObjectMeta, which the API
// server fills with managedFields and the like) accept any key and are not reported.
import { distance } from "fastest-levenshtein";
import type { z } from "zod";

export interface UnknownField {
  /** Path of the unknown key, e.g. ["spec", "externalURL"] or ["spec", "internalConnectionSettings", "0", "hots"]. */
  readonly path: readonly string[];
  /** The nearest declared field name of the same object, when one is close enough to be a likely typo. */
  readonly suggestion?: string;
  /** Every field name the object declares, sorted (for the message when nothing is close). */
  readonly known: readonly string[];
}

// Zod v4 keeps each schema's definition under _zod.def; only the parts the walk needs are typed here.
interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly catchall?: z.ZodType;
  readonly element?: z.ZodType;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly valueType?: z.ZodType;
  readonly getter?: () => z.ZodType;
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/**
 * Every key in value that schema does not declare, depth first, in document order. Suggestions are
 * made for the first `suggestFor` only (an edit distance against every declared name each: a
 * hostile document with 100,000 unknown keys would spend seconds on guesses nobody reads).
 */
export function findUnknownFields(schema: z.ZodType, value: unknown, suggestFor = Infinity): UnknownField[] {
  const out: UnknownField[] = [];
  walk(schema, value, [], out);
  if (out.length > suggestFor) {
    const plain = out.slice(suggestFor).map(({ path, known }) => ({ path, known }));
    return [...out.slice(0, suggestFor).map((u) => ({ ...u, ...suggest(u.path[u.path.length - 1], u.known) })), ...plain];
  }
  return out.map((u) => ({ ...u, ...suggest(u.path[u.path.length - 1], u.known) }));
}

function walk(schema: z.ZodType, value: unknown, path: string[], out: UnknownField[]): void {
  const def = defOf(schema);
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "nonoptional":
    case "readonly":
    case "catch":
      if (def.innerType) walk(def.innerType, value, path, out);
      return;
    case "pipe":
      if (def.in) walk(def.in, value, path, out);
      return;
    case "lazy":
      if (def.getter) walk(def.getter(), value, path, out);
      return;
    case "array":
      if (def.element && Array.isArray(value)) value.forEach((v, i) => walk(def.element!, v, [...path, String(i)], out));
      return;
    case "record":
      if (def.valueType && isPlainObject(value)) for (const [k, v] of Object.entries(value)) walk(def.valueType, v, [...path, k], out);
      return;
    case "union":
      return walkUnion(def.options ?? [], value, path, out);
    case "object":
      return walkObject(def, value, path, out);
    default:
      return; // scalars, enums, literals: nothing nested
  }
}

function walkObject(def: Def, value: unknown, path: string[], out: UnknownField[]): void {
  if (!isPlainObject(value)) return;
  const shape = def.shape ?? {};
  const open = def.catchall !== undefined && defOf(def.catchall).type !== "never";
  const known = Object.keys(shape).sort();
  for (const [key, v] of Object.entries(value)) {
    const field = shape[key];
    if (field) walk(field, v, [...path, key], out);
    else if (!open) out.push({ path: [...path, key], known });
  }
}

/** A value is checked against the option it parses as (else the one with the fewest unknown keys). */
function walkUnion(options: readonly z.ZodType[], value: unknown, path: string[], out: UnknownField[]): void {
  let best: { parses: boolean; found: UnknownField[] } | undefined;
  for (const o of options) {
    const found: UnknownField[] = [];
    walk(o, value, path, found);
    const parses = o.safeParse(value).success;
    if (!best || (parses && !best.parses) || (parses === best.parses && found.length < best.found.length)) best = { parses, found };
  }
  if (best) out.push(...best.found);
}

/**
 * The declared name nearest to key: equal but for case first (externalURL → externalUrl), else the
 * smallest edit distance that is at most a third of the name (at least 2), so unrelated names get no guess.
 */
export function suggest(key: string, known: readonly string[]): { suggestion?: string } {
  const lower = key.toLowerCase();
  const sameButCase = known.find((k) => k.toLowerCase() === lower);
  if (sameButCase) return { suggestion: sameButCase };
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const limit = Math.max(2, Math.floor(key.length / 3));
  return best !== undefined && bestDistance <= limit ? { suggestion: best } : {};
}

/** The message for one unknown field: "unknown field \"externalURL\"; did you mean externalUrl?". */
export function unknownFieldMessage(u: UnknownField): string {
  const key = u.path[u.path.length - 1];
  if (u.suggestion) return `unknown field ${JSON.stringify(key)}; did you mean ${u.suggestion}?`;
  return `unknown field ${JSON.stringify(key)}; known fields here: ${u.known.join(", ")}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
