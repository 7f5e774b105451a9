// cas-gateway command line: one program, subcommands registered from cli/commands/.
import { Command } from "commander";
import { registerCommands } from "./commands/index.js";
import { ending } from "./errors.js";

let running: Command | undefined;

const program = new Command()
  .name("cas-gateway")
  .description(
    "Exchange Client Access routing for Envoy: decides, per request, whether to serve locally, proxy to the mailbox's site, redirect, or refuse.",
  )
  .version("0.1.0")
  // Usage errors end with exit 2 and a one-line pointer to --help instead of the whole help text.
  .exitOverride()
  .showHelpAfterError("(add --help for the options)")
  .hook("preAction", (_program, actionCommand) => {
    running = actionCommand;
  });

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const end = ending(err, running);
  if (end.message) process.stderr.write(`cas-gateway: ${end.message}\n`);
  process.exit(end.exitCode);
});
