// standalone run in-process by tests and benches: every port it opens or writes into Envoy's bootstrap
// given as 0, so each is resolved to a free loopback port and parallel runs never collide.
export const EVERY_PORT_FREE = {
  xdsPort: "0",
  authzPort: "0",
  adminPort: "0",
  pop3Port: "0",
  imap4Port: "0",
  httpPort: "0",
  httpsPort: "0",
  envoyAdminPort: "0",
  envoyReadyPort: "0",
} as const;
