// Envoy's front door: which listeners it builds, the ports it binds and the ports clients see,
// and what it strips from responses. Taken by every command that produces Envoy's configuration
// (operator, render, standalone), so a flag shapes the listeners the same way wherever it is given.
import { z } from "zod";
import { INTERNAL_RESPONSE_HEADERS, LISTENER_NAMES } from "../../operator/xds/translate/options.js";
import type { ListenerPorts, TranslateOptions } from "../../operator/xds/translate/index.js";
import { defineOptions, opt } from "./define.js";

type Name = keyof ListenerPorts;

/** "https=8443,http=8080" → { https: 8443, http: 8080 }; a bad entry is an error naming it. */
const portList = z.string().transform((s, ctx) => {
  const out: Partial<Record<Name, number>> = {};
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [k, v, ...rest] = part.split("=");
    const n = Number(v);
    if (rest.length || !(LISTENER_NAMES as readonly string[]).includes(k!) || !/^\d+$/.test(v ?? "") || n < 1 || n > 65535) {
      ctx.addIssue({ code: "custom", message: `"${part}": expected name=port (1-65535) with name one of ${LISTENER_NAMES.join(", ")}` });
      return z.NEVER;
    }
    out[k as Name] = n;
  }
  return out;
});

export const envoyListenerOptions = defineOptions("envoy listener", {
  listenerPorts: {
    flags: "--listener-ports <list>",
    help: "ports Envoy's listeners bind, e.g. https=8443,http=8080,imaps=8993 (default: all unprivileged: https 8443, http 8080, pop3 8110, pop3s 8995, imap4 8143, imaps 8993, smtp 8025, submission 8587)",
    schema: portList.optional(),
  },
  publicPorts: {
    flags: "--public-ports <list>",
    help: "ports clients connect to when they differ from --listener-ports (a Service publishing 443 in front of 8443); redirects use them",
    schema: portList.optional(),
  },
  smtp: { flags: "--smtp", help: "build the SMTP and submission listeners (to the SMTP site's transport servers)", schema: opt.flag.optional() },
  smtpSite: { flags: "--smtp-site <site>", help: "site whose servers take SMTP (implies --smtp; default: the first internet-facing site)", schema: opt.text.optional() },
  stripResponseHeader: {
    flags: "--strip-response-header <name>",
    help: `response header removed before it reaches a client (repeatable; replaces the default list: ${INTERNAL_RESPONSE_HEADERS.join(", ")})`,
    repeatable: true,
    schema: z.array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be an HTTP header name")).default([]),
  },
  exposeDecisionHeaders: {
    flags: "--expose-decision-headers",
    help: "DEBUGGING ONLY: let the sidecar's x-cas-* decision headers reach clients",
    schema: opt.flag.optional(),
  },
});

export type EnvoyListenerFlagValues = z.output<z.ZodObject<typeof envoyListenerOptions.shape>>;

/** The TranslateOptions these flags give. */
export function envoyListenerSettings(f: EnvoyListenerFlagValues): Partial<TranslateOptions> {
  const some = (p: Partial<Record<Name, number>> | undefined) => (p && Object.keys(p).length ? p : undefined);
  const ports = some(f.listenerPorts);
  const publicPorts = some(f.publicPorts);
  return {
    ...(ports ? { ports } : {}),
    ...(publicPorts ? { publicPorts } : {}),
    ...(f.smtp ? { smtp: true } : {}),
    ...(f.smtpSite ? { smtpSite: f.smtpSite } : {}),
    ...(f.stripResponseHeader.length ? { stripResponseHeaders: f.stripResponseHeader } : {}),
    ...(f.exposeDecisionHeaders ? { exposeDecisionHeaders: true } : {}),
  };
}
