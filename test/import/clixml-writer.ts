// A small CLIXML writer for test data: writes what Windows PowerShell's Export-Clixml writes for
// objects that came from a remote Exchange Management Shell (Deserialized.* type names, UTF-8 with
// a BOM for -Encoding UTF8, CRLF line ends, RefIds for objects and type-name lists, <TNRef> when a
// type-name list repeats). Only the test data generator uses it; the importer only reads.

export type W =
  | { t: "S" | "URI" | "G" | "DT" | "Version"; v: string }
  | { t: "B"; v: boolean }
  | { t: "I32" | "I64"; v: number }
  | { t: "Nil" }
  | { t: "Obj"; types: readonly string[]; str?: string; props?: ReadonlyArray<readonly [string, W]>; list?: readonly W[]; enumValue?: number };

export const S = (v: string): W => ({ t: "S", v });
export const URI = (v: string | null | undefined): W => (v ? { t: "URI", v } : { t: "Nil" });
export const B = (v: boolean): W => ({ t: "B", v });
export const I32 = (v: number): W => ({ t: "I32", v });
export const G = (v: string): W => ({ t: "G", v });
export const DT = (v: string): W => ({ t: "DT", v });
export const Nil: W = { t: "Nil" };

const deser = (types: readonly string[]) => types.map((t) => `Deserialized.${t}`);

/** An enum as a remote session hands it over: type names, its name, its integer. */
export function Enum(type: string, name: string, value: number): W {
  return { t: "Obj", types: deser([type, "System.Enum", "System.ValueType", "System.Object"]), str: name, enumValue: value };
}

/** A MultiValuedProperty<T> of strings (ADObjectIds, enums and settings arrive as their strings). */
export function MVP(itemType: string, items: readonly string[]): W {
  return {
    t: "Obj",
    types: deser([`Microsoft.Exchange.Data.MultiValuedProperty\`1[[${itemType}]]`, "Microsoft.Exchange.Data.MultiValuedPropertyBase", "System.Object"]),
    list: items.map(S),
  };
}

/** An object with ToString and properties (an ADObject, ServerVersion...). */
export function Obj(types: readonly string[], str: string | undefined, props: ReadonlyArray<readonly [string, W]>): W {
  return { t: "Obj", types: deser(types), ...(str !== undefined ? { str } : {}), props };
}

const XML_TEXT: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
/** XML-escape, and write characters XML cannot hold as _xHHHH_ (MS-PSRP 2.2.5.3.2). */
function text(s: string): string {
  return s
    .replace(/_(x[0-9A-Fa-f]{4}_)/g, "_x005F_$1")
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\r\n]/g, (c) => `_x${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}_`)
    .replace(/[&<>"]/g, (c) => XML_TEXT[c]);
}

export function writeClixml(objects: readonly W[]): Buffer {
  const lines: string[] = ['<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'];
  let objId = 0;
  const tnIds = new Map<string, number>();
  const emit = (w: W, indent: string, name: string | undefined) => {
    const n = name === undefined ? "" : ` N="${text(name)}"`;
    if (w.t === "Nil") {
      lines.push(`${indent}<Nil${n} />`);
      return;
    }
    if (w.t !== "Obj") {
      const v = typeof w.v === "string" ? text(w.v) : String(w.v);
      lines.push(`${indent}<${w.t}${n}>${v}</${w.t}>`);
      return;
    }
    lines.push(`${indent}<Obj${n} RefId="${objId++}">`);
    const key = w.types.join("\n");
    const tn = tnIds.get(key);
    if (tn !== undefined) lines.push(`${indent}  <TNRef RefId="${tn}" />`);
    else {
      const id = tnIds.size;
      tnIds.set(key, id);
      lines.push(`${indent}  <TN RefId="${id}">`);
      for (const t of w.types) lines.push(`${indent}    <T>${text(t)}</T>`);
      lines.push(`${indent}  </TN>`);
    }
    if (w.str !== undefined) lines.push(`${indent}  <ToString>${text(w.str)}</ToString>`);
    if (w.enumValue !== undefined) lines.push(`${indent}  <I32>${w.enumValue}</I32>`);
    if (w.list) {
      if (w.list.length === 0) lines.push(`${indent}  <LST />`);
      else {
        lines.push(`${indent}  <LST>`);
        for (const item of w.list) emit(item, `${indent}    `, undefined);
        lines.push(`${indent}  </LST>`);
      }
    }
    if (w.props) {
      lines.push(`${indent}  <Props>`);
      for (const [pn, pv] of w.props) emit(pv, `${indent}    `, pn);
      lines.push(`${indent}  </Props>`);
    }
    lines.push(`${indent}</Obj>`);
  };
  for (const o of objects) emit(o, "  ", undefined);
  lines.push("</Objs>");
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.join("\r\n"), "utf8")]);
}
