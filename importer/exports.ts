// The export files `cas-gateway import` reads: one `<cmdlet> | Export-Clixml <cmdlet>.xml` per
// Exchange Management Shell cmdlet. A file is recognised by its name; each object also by its type
// names (so a file named otherwise still imports), which must agree with the name when both say.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ClixmlError, decodeFileBytes, parseClixml, plainTypeNames, stringForm, type PsObject } from "./clixml.js";

/** What each cmdlet returns (the .NET type name, without "Deserialized."). */
export const CMDLET_TYPES = {
  "Get-ADSite": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADSite",
  "Get-ExchangeServer": "Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
  "Get-OwaVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADOwaVirtualDirectory",
  "Get-EcpVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADEcpVirtualDirectory",
  "Get-ActiveSyncVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADMobileVirtualDirectory",
  "Get-WebServicesVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADWebServicesVirtualDirectory",
  "Get-OabVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADOabVirtualDirectory",
  "Get-AutodiscoverVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADAutodiscoverVirtualDirectory",
  "Get-MapiVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADMapiVirtualDirectory",
  "Get-PowerShellVirtualDirectory": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADPowerShellVirtualDirectory",
  "Get-OutlookAnywhere": "Microsoft.Exchange.Data.Directory.SystemConfiguration.ADRpcHttpVirtualDirectory",
  "Get-PopSettings": "Microsoft.Exchange.Data.Directory.SystemConfiguration.Pop3AdConfiguration",
  "Get-ImapSettings": "Microsoft.Exchange.Data.Directory.SystemConfiguration.Imap4AdConfiguration",
  "Get-MailboxDatabase": "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase",
  "Get-OrganizationRelationship": "Microsoft.Exchange.Data.Directory.SystemConfiguration.OrganizationRelationship",
} as const;
export type Cmdlet = keyof typeof CMDLET_TYPES;
export const CMDLETS = Object.keys(CMDLET_TYPES) as Cmdlet[];

const BY_TYPE = new Map<string, Cmdlet>(CMDLETS.map((c) => [CMDLET_TYPES[c].toLowerCase(), c]));
const BY_FILE = new Map<string, Cmdlet>(CMDLETS.map((c) => [c.toLowerCase(), c]));

/** One exported object and where it came from. */
export interface ExportedObject {
  readonly cmdlet: Cmdlet;
  /** File name relative to the export directory. */
  readonly file: string;
  /** 1-based position in the file. */
  readonly index: number;
  readonly object: PsObject;
}

export interface ExportProblem {
  readonly file: string;
  /** The object (its Identity or Name, else its position); empty for a whole-file problem. */
  readonly object: string;
  readonly message: string;
}

export interface ExportSet {
  readonly objects: readonly ExportedObject[];
  /** Which files each cmdlet's objects came from. */
  readonly files: ReadonlyMap<Cmdlet, readonly string[]>;
  readonly errors: readonly ExportProblem[];
  readonly warnings: readonly ExportProblem[];
}

/** The cmdlet a file is named for: Get-OwaVirtualDirectory.xml (any case, .xml or .clixml). */
export function cmdletOfFileName(name: string): Cmdlet | undefined {
  const m = /^(.*)\.(xml|clixml)$/i.exec(name);
  return m ? BY_FILE.get(m[1].toLowerCase()) : undefined;
}

/** The cmdlet whose output an object is, by its type names ("Deserialized." and "Selected." prefixes ignored). */
export function cmdletOfObject(o: PsObject): Cmdlet | undefined {
  for (const t of plainTypeNames(o)) {
    const c = BY_TYPE.get(t.replace(/^Selected\./, "").toLowerCase());
    if (c) return c;
  }
  return undefined;
}

/** How an object is named in messages: its Identity, else Name, else its position. */
export function objectLabel(o: PsObject, index: number): string {
  const id = stringForm(o.props.get("Identity")) ?? stringForm(o.props.get("Name"));
  return id ? `${id} (object ${index})` : `object ${index}`;
}

/** Read every .xml/.clixml file of `dir` (not recursive) and sort the objects by cmdlet. */
export async function readExportDir(dir: string): Promise<ExportSet> {
  const s = await stat(dir).catch((err: unknown) => {
    throw new Error(`${dir}: cannot read the export directory: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (!s.isDirectory()) throw new Error(`${dir}: not a directory`);
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && /\.(xml|clixml)$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  const texts = new Map<string, Uint8Array>();
  for (const n of names) texts.set(n, await readFile(join(dir, n)));
  return classifyExports(texts);
}

/** Classify already-read files (name → bytes); the unit tests call this directly. */
export function classifyExports(files: ReadonlyMap<string, Uint8Array>): ExportSet {
  const objects: ExportedObject[] = [];
  const byCmdlet = new Map<Cmdlet, string[]>();
  const errors: ExportProblem[] = [];
  const warnings: ExportProblem[] = [];
  for (const [file, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let values;
    try {
      values = parseClixml(decodeFileBytes(bytes), file);
    } catch (err) {
      if (err instanceof ClixmlError) errors.push({ file, object: err.where, message: err.detail });
      else errors.push({ file, object: "", message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    const named = cmdletOfFileName(file);
    const found: ExportedObject[] = [];
    let fileFailed = false;
    values.forEach((v, i) => {
      const index = i + 1;
      if (v === null || typeof v !== "object") {
        if (!named) return; // a file of something else: ignored below
        errors.push({ file, object: `object ${index}`, message: `is a ${v === null ? "null" : typeof v} value, not an Exchange object` });
        fileFailed = true;
        return;
      }
      const typed = cmdletOfObject(v);
      if (typed && named && typed !== named) {
        errors.push({
          file,
          object: objectLabel(v, index),
          message: `is a ${CMDLET_TYPES[typed].split(".").pop()} (${typed} output), but the file is named for ${named}`,
        });
        fileFailed = true;
        return;
      }
      const cmdlet = typed ?? named;
      if (!cmdlet) return;
      found.push({ cmdlet, file, index, object: v });
    });
    if (fileFailed) continue;
    if (found.length === 0 && values.length > 0) {
      warnings.push({ file, object: "", message: `ignored: not named for a cmdlet cas-gateway import reads, and no object has a type it knows (${knownTypesOf(values)})` });
      continue;
    }
    if (values.length > found.length) {
      warnings.push({ file, object: "", message: `${values.length - found.length} object(s) of other types ignored` });
    }
    for (const o of found) {
      objects.push(o);
      const list = byCmdlet.get(o.cmdlet) ?? [];
      if (!list.includes(file)) list.push(file);
      byCmdlet.set(o.cmdlet, list);
    }
  }
  return { objects, files: byCmdlet, errors, warnings };
}

function knownTypesOf(values: readonly unknown[]): string {
  const first = values.find((v): v is PsObject => v !== null && typeof v === "object");
  return first ? `first type: ${first.typeNames[0] ?? "none"}` : "no objects";
}
