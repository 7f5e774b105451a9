// Every subcommand registers itself here. Keep one line per command.
import type { Command } from "commander";
import { register as validate } from "./validate.js";
import { register as sidecar } from "./sidecar.js";
import { register as explain } from "./explain.js";
import { register as mailProxy } from "./mail-proxy.js";
import { register as render } from "./render.js";
import { register as operator } from "./operator.js";
import { register as standalone } from "./standalone.js";
import { register as importExports } from "./import.js";
import { register as envoyDrain } from "./envoy-drain.js";

type Register = (program: Command) => void;

const commands: Register[] = [validate, sidecar, explain, mailProxy, render, operator, standalone, importExports, envoyDrain];

export function registerCommands(program: Command): void {
  for (const register of commands) register(program);
}
