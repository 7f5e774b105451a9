// The POP3/IMAP4 proxy (docs/mail-proxy.md).
export { MailLimits, MailListener, MailPolicy, MailProtocol, type MailListenerInput } from "./config.js";
export { MailProxy, type BoundListener, type MailProxyOptions } from "./server.js";
export { MailMetrics, type LoginOutcome } from "./metrics.js";
export type { DecideFn, IdentityCandidatesFn } from "./login.js";
