// cas-gateway command line: one program, subcommands registered from cli/commands/.
import { Command } from "commander";
import { registerCommands } from "./commands/index.js";

const program = new Command()
  .name("cas-gateway")
  .description(
    "Exchange Client Access routing for Envoy: decides, per request, whether to serve locally, proxy to the mailbox's site, redirect, or refuse.",
  )
  .version("0.1.0")
  .showHelpAfterError();

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`cas-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
