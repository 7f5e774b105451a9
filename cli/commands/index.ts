// Every subcommand registers itself here. Keep one line per command.
import type { Command } from "commander";
import { register as validate } from "./validate.js";
import { register as sidecar } from "./sidecar.js";
import { register as explain } from "./explain.js";

type Register = (program: Command) => void;

const commands: Register[] = [validate, sidecar, explain];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
