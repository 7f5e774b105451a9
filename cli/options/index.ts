// Every component's command-line options, defined once (see define.ts). A command that runs a
// component adds its group: sidecar -> directory + sidecar, mail-proxy -> directory + mail proxy,
// standalone -> all three. docs/cli.md documents each group; cli/options/options-docs.test.ts
// compares it with every command's --help.
export { addOptions, defineOptions, flagName, parseFlags, type OptionDef, type OptionGroup } from "./define.js";
export { directoryOptions } from "./directory.js";
export { mailProxyOptions, mailProxySettings, mailTlsPair, type MailProxyFlagValues } from "./mail-proxy.js";
export { sidecarOptions } from "./sidecar.js";
export { envoyListenerOptions, envoyListenerSettings, type EnvoyListenerFlagValues } from "./envoy.js";
export { configInputOptions } from "./config-input.js";
export { xdsClientOptions, xdsClientTls, xdsClientTlsRule, type XdsClientFlagValues } from "./xds-client.js";
