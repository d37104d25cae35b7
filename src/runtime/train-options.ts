// PLACEHOLDER: the training options shared by `mnistc train` and the emitted `train.mjs`.
import type { Command } from "commander";

export interface OptionParsers {
  positiveInt(value: string): number;
  nonNegativeInt(value: string): number;
  positiveNumber(value: string): number;
}

export function addTrainOptions(cmd: Command, _parsers: OptionParsers): Command {
  return cmd;
}
