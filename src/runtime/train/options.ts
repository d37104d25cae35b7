// The options of `mnistc train`, declared once: `src/cli.ts` adds them to its `train` command and
// the emitted `train.mjs` (through `trainMain`) to its own, so both accept exactly the same flags.
// No defaults here: an option left out is `undefined`, so a resumed run can tell "not given" (use
// the checkpoint's value) from "given" (override it); the spec supplies the rest.
import { type Command, InvalidArgumentError } from "commander";
import { RANGES, type Range, rangeText } from "../../compiler/ranges.js";

type Parse = (value: string) => number;

export interface OptionParsers {
  positiveInt: Parse;
  nonNegativeInt: Parse;
  positiveNumber: Parse;
  /** The numbers of compiler/ranges.ts: each refused outside its stated range. */
  epochs: Parse;
  batchSize: Parse;
  seed: Parse;
  images: Parse;
  threads: Parse;
}

export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  trainLimit?: number;
  testLimit?: number;
  val?: number;
  teacher?: string[];
  out?: string;
  resume?: boolean;
  force?: boolean;
  quiet?: boolean;
  data?: string;
  json?: boolean;
}

/**
 * Commander's usage errors (unknown option, missing argument, a value refused) as one line,
 * `<name>: error: <what> (see: <hint>)`, instead of the error followed by the whole help.
 */
export function oneLineErrors(cmd: Command, name: string, hint: string): Command {
  return cmd.showHelpAfterError(false).configureOutput({
    outputError: (text, write) =>
      write(`${name}: ${text.trim().replace(/\s*\n\s*/g, " ")} (see: ${hint})\n`),
  });
}

export function addTrainOptions(cmd: Command, parsers: OptionParsers = optionParsers): Command {
  return cmd
    .option(
      "--epochs <n>",
      `number of epochs, ${rangeText(RANGES.epochs)} (default: the spec's)`,
      parsers.epochs,
    )
    .option(
      "--batch-size <n>",
      `training batch size, ${rangeText(RANGES.batchSize)} (default: the spec's)`,
      parsers.batchSize,
    )
    .option(
      "--lr <rate>",
      "learning rate: the optimizer's, or OneCycle's max_lr (default: the spec's)",
      parsers.positiveNumber,
    )
    .option(
      "--seed <n>",
      `seed of initialization, shuffling and augmentation, ${rangeText(RANGES.seed)}`,
      parsers.seed,
    )
    .option("--train-limit <n>", "train on the first N training images", parsers.images)
    .option("--test-limit <n>", "evaluate on the first N test images", parsers.images)
    .option(
      "--val <n>",
      "hold out the last N training images as a validation set, evaluated after every epoch instead of the test set (which the run then never reads)",
      parsers.images,
    )
    .option(
      "--teacher <files...>",
      "distill from these ONNX models (paths from the current folder) instead of the teachers the spec's train.distill names; for a run with --val, teachers trained without the validation images",
    )
    .option("--out <dir>", "output folder (default: runs/<spec name>)")
    .option("--resume", "continue from the checkpoint in the output folder")
    .option("--force", "start afresh in an output folder that already holds a run (replacing it)")
    .option("--quiet", "print nothing but errors")
    .option(
      "--data <dir>",
      "the dataset's folder (default: the spec's data.path, else the dataset's own)",
    )
    .option("--json", "print the final metrics as JSON on stdout");
}

function parser(test: (n: number) => boolean, expected: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !test(n)) throw new InvalidArgumentError(`expected ${expected}`);
    return n;
  };
}

const intIn = (r: Range): Parse =>
  parser((n) => Number.isInteger(n) && n >= r.min && n <= r.max, `an integer ${rangeText(r)}`);

/** The command line's number parsers: `mnistc`'s and the emitted `train.mjs`'s. */
export const optionParsers: OptionParsers = {
  positiveInt: parser((n) => Number.isInteger(n) && n > 0, "a positive integer"),
  nonNegativeInt: parser((n) => Number.isInteger(n) && n >= 0, "an integer >= 0"),
  positiveNumber: parser((n) => Number.isFinite(n) && n > 0, "a positive number"),
  epochs: intIn(RANGES.epochs),
  batchSize: intIn(RANGES.batchSize),
  seed: intIn(RANGES.seed),
  images: intIn(RANGES.images),
  threads: intIn(RANGES.threads),
};
