// Every subcommand registers itself here. Keep one line per command.
import type { Command } from "commander";

type Register = (program: Command) => void;

const commands: Register[] = [];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
