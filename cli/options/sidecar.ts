// The decision sidecar's own options, taken by every command that runs it (sidecar, standalone).
// Its directory options are in directory.ts; listen and admin addresses belong to each command.
import { defineOptions, opt } from "./define.js";

export const sidecarOptions = defineOptions("sidecar", {
  affinityKeyFile: {
    flags: "--affinity-key-file <file>",
    help: "HMAC key for affinity cookies (>= 32 bytes; a mounted Secret). Without it a random per-process key is used",
    schema: opt.file.optional(),
  },
  affinityTtl: { flags: "--affinity-ttl <seconds>", help: "affinity pin lifetime", default: "28800", schema: opt.int(60, 7 * 86400) },
});
