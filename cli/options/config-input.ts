// How the watched configuration files are taken (standalone's file provider): when a change counts
// as settled, whether an emptied organisation may replace a working one, and the size and count
// budgets past which input is refused instead of parsed (issue 20: inputs that must not stall,
// empty or bloat the gateway).
import { defineOptions, opt } from "./define.js";

const bytes = opt.int(1024, 2 ** 31 - 1);

export const configInputOptions = defineOptions("configuration input", {
  settleMs: {
    flags: "--settle-ms <ms>",
    help: "a changed file is taken once it has been quiet this long and did not change while read (a ConfigMap's ..data swap, and a file renamed in after it was written, are taken at once)",
    default: "1000",
    schema: opt.int(0, 600_000),
  },
  allowShrink: {
    flags: "--allow-shrink",
    help: "publish an empty or drastically shrunken organisation or mailbox directory (no servers/rows, or under half of those in force) over a working one",
    schema: opt.flag.optional(),
  },
  maxManifestFileBytes: { flags: "--max-manifest-file-bytes <n>", help: "a manifest file larger than this is refused", default: String(4 << 20), schema: bytes },
  maxManifestDirBytes: { flags: "--max-manifest-dir-bytes <n>", help: "all manifest files together; files past it are refused", default: String(16 << 20), schema: bytes },
  maxManifestFiles: { flags: "--max-manifest-files <n>", help: "manifest files read from --manifests (recursively)", default: "2000", schema: opt.int(1, 1_000_000) },
  maxManifestDocuments: { flags: "--max-manifest-documents <n>", help: "YAML documents in one manifest file", default: "20000", schema: opt.int(1, 10_000_000) },
  maxDirectoryBytes: {
    flags: "--max-directory-bytes <n>",
    help: "a mailbox CSV larger than this is refused (a 1,000,000-mailbox export is ~190 MB)",
    default: String(512 << 20),
    schema: bytes,
  },
});
