// POST /explain on the gateway's admin port: the request an administrator asks about, as JSON
// (the same fields as `cas-gateway explain`'s flags), decided against what is in force now, and the
// answer as JSON with the numbered trace. `cas-gateway explain --gateway URL` and the organisation
// page's form are its clients.
import type http from "node:http";
import { z } from "zod";
import type { DecisionService } from "../../sidecar/authz/decision-service.js";
import { ExplainFlags, explainRequest, formatDecision } from "../commands/explain.js";

/** Largest request body accepted (an EWS SOAP body or an OWA logon form fits easily). */
export const MAX_EXPLAIN_BODY = 1 << 20;

export const ExplainQuery = ExplainFlags.pick({ url: true, user: true, header: true, method: true, site: true, pin: true, mechanism: true, sourceIp: true })
  .extend({ body: z.string().max(MAX_EXPLAIN_BODY).optional() })
  .strict();
export type ExplainQuery = z.input<typeof ExplainQuery>;

export const ExplainAnswer = z.object({
  topologyVersion: z.string().nullable(),
  /** Servers and server/Service keys down in the health view decided against. */
  down: z.array(z.string()),
  pinnedServer: z.string().optional(),
  /** The decision as the engine returns it (outcome, rules, trace, ...). */
  decision: z.looseObject({ outcome: z.string(), rules: z.array(z.string()), trace: z.array(z.string()) }),
  /** What `cas-gateway explain` prints: the decision line, the numbered trace, the rules. */
  text: z.string(),
});
export type ExplainAnswer = z.infer<typeof ExplainAnswer>;

export interface ExplainContext {
  readonly service: () => Promise<DecisionService>;
  /** Keys down in the health view in force. */
  readonly down: () => readonly string[];
}

export async function answerExplain(query: unknown, ctx: ExplainContext): Promise<{ status: number; body: unknown }> {
  const parsed = ExplainQuery.safeParse(query);
  if (!parsed.success) {
    return { status: 400, body: { error: parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ") } };
  }
  const q = parsed.data;
  const svc = await ctx.service();
  const req = explainRequest({ ...q, manifests: "", directory: "", down: [] }, q.body);
  const { decision, state, pinnedServer } = await svc.explain(req, q.site);
  const answer: ExplainAnswer = {
    topologyVersion: state?.topology.version ?? null,
    down: [...ctx.down()],
    ...(pinnedServer ? { pinnedServer } : {}),
    decision: { ...decision, rules: [...decision.rules], trace: [...decision.trace] },
    text: formatDecision(decision),
  };
  return { status: 200, body: answer };
}

/** Read a JSON request body (bounded). */
export async function readJsonBody(req: http.IncomingMessage, max = MAX_EXPLAIN_BODY + 64 * 1024): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) return { ok: false, error: `request body over ${max} bytes` };
    chunks.push(c);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown };
  } catch (err) {
    return { ok: false, error: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}
