#!/usr/bin/env node
// The `mnistc` command line: the only entry point that reads argv. Each command's handler lives in
// `src/cli/<command>.ts`, is loaded on demand (so `check` never pays for loading TensorFlow.js) and
// returns the exit code. A `UserError` anywhere prints one line and exits 1; anything else is a bug.
import { Command, InvalidArgumentError, Option } from "commander";
import { RANGES, rangeText } from "./compiler/ranges.js";
import { UserError } from "./errors.js";
import { packagePath } from "./paths.js";
// The same parsers as the emitted train.mjs's (one implementation: `--seed ""` is an error in both).
import { addTrainOptions, oneLineErrors, optionParsers } from "./runtime/train/options.js";
import { asCommand, readRegularFile } from "./util/files.js";
import { printable } from "./util/text.js";

const { positiveInt, images, threads } = optionParsers;

function port(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError("expected a port number 0-65535 (0 picks a free port)");
  }
  return n;
}

function version(): string {
  const pkg = JSON.parse(
    readRegularFile(packagePath("package.json"), {
      maxBytes: 1 << 20,
      what: "package.json",
    }).toString("utf8"),
  ) as { version?: string };
  return pkg.version ?? "unknown";
}

/** Spec arguments as paths: a shipped spec's name (`step4`) works from any folder. */
async function specArgs(args: string[]): Promise<string[]> {
  const { resolveSpecArg } = await import("./cli/spec.js");
  return args.map(resolveSpecArg);
}
async function specArg(arg: string): Promise<string> {
  return (await import("./cli/spec.js")).resolveSpecArg(arg);
}

async function run(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await asCommand(action);
  } catch (err) {
    if (err instanceof UserError) {
      // Names in the message come from files and arguments: no raw escape sequence reaches the
      // terminal (each line made printable; a message may be several diagnostics' lines).
      process.stderr.write(`mnistc: error: ${err.message.split("\n").map(printable).join("\n")}\n`);
      process.exitCode = 1;
    } else {
      throw err;
    }
  }
}

// `mnistc params --json | head` closes our stdout early: stop quietly, as Unix tools do.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  process.exit(0);
});
// A closed stderr (`mnistc train ... 2>&1 | head`) only loses the progress and log lines: the work
// goes on and its files are written, rather than dying with a stack trace nobody can read.
process.stderr.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

const program = new Command("mnistc")
  .description("Declarative model-spec compiler for small vision models")
  .version(version(), "-V, --version", "print the version");
program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : 1);
});

program
  .command("check")
  .description("check specs; print every problem as file:line:col")
  .argument("<spec...>", "spec files or shipped specs' names (`-` reads one from standard input)")
  .option("--json", "print diagnostics as JSON")
  .action((specs: string[], opts) =>
    run(async () => (await import("./cli/check.js")).check(await specArgs(specs), opts)),
  );

program
  .command("params")
  .description(
    "per-layer table of shapes, parameters, MACs and receptive field; totals, memory estimate, budget verdict",
  )
  .argument("[spec...]", "spec files (default: every spec under specs/)")
  .option("--max <n>", "parameter budget (overrides the spec's)", positiveInt)
  .option(
    "--batch-size <n>",
    "batch size of the memory estimate (default: the spec's train.batch_size)",
    positiveInt,
  )
  .option(
    "--depth <n>",
    "1: one row per block with its subtotals (default: every layer)",
    positiveInt,
  )
  .option("--json", "print one JSON object per spec")
  .action((specs: string[], opts) =>
    run(async () => (await import("./cli/params.js")).params(await specArgs(specs), opts)),
  );

program
  .command("graph")
  .description("draw the net as written: blocks, layers with shapes and parameters, skip edges")
  .argument("<spec>", "spec file, or a shipped spec's name (step4)")
  .option("-o, --out <file>", "picture to write: .svg or .png (default: <name>.svg)")
  .option("--json", "print the laid-out graph as JSON (writes a picture only with -o)")
  .action((spec: string, opts) =>
    run(async () => (await import("./cli/graph.js")).graph(await specArg(spec), opts)),
  );

// The backend list is only loaded for `compile` (it costs a tenth of a second at every start).
const targets =
  process.argv[2] === "compile"
    ? (await import("./backends/index.js")).BACKENDS.map(
        (b) => `  ${b.name.padEnd(8)} ${b.description}`,
      )
    : [];
program
  .command("compile")
  .description("emit a backend's program from a spec (default: the tfjs training program)")
  .argument("<spec>", "spec file, or a shipped spec's name (step4)")
  .option("-t, --target <name>", "backend (see below)", "tfjs")
  .option(
    "-o, --out <path>",
    "output directory or file (default: out/<spec>/tfjs/, out/<spec>/<spec>.onnx)",
  )
  .option(
    "--weights <path>",
    "trained weights (onnx): a checkpoint directory or a .safetensors file",
  )
  .addHelpText("after", `\nTargets:\n${targets.join("\n")}`)
  .action((spec: string, opts) =>
    run(async () => (await import("./cli/compile.js")).compile(await specArg(spec), opts)),
  );

const train = program
  .command("train")
  .description("train a spec on its dataset (the compiled ONNX step, or the tfjs program)")
  .argument("<spec>", "spec file, or a shipped spec's name (step4)");
// The emitted program `train.mjs` accepts the same options; they are declared once in the runtime.
addTrainOptions(train)
  .addOption(
    new Option(
      "--backend <name>",
      "who takes the training steps: onnx (the compiled step on onnxruntime, faster) or tfjs (the emitted program)",
    )
      .choices(["onnx", "tfjs"])
      .default("onnx"),
  )
  .option(
    "--threads <n>",
    `onnxruntime threads for --backend onnx, ${rangeText(RANGES.threads)} (default: every core)`,
    threads,
  );
train.action((spec: string, opts) =>
  run(async () => (await import("./cli/train.js")).train(await specArg(spec), opts)),
);

program
  .command("sweep")
  .description(
    "search a space of specs and recipes on a validation split: trials as `mnistc train --val` children, a leaderboard and a curve (see README: Sweeps)",
  )
  .argument("<file>", "sweep file (sweeps/NAME.yaml); records go to sweeps/NAME/")
  .option("--jobs <n>", "trials at once, one thread each (default: every core)", positiveInt)
  .addOption(
    new Option("--target <name>", "local (run here) or optuna (emit an Optuna study into -o DIR)")
      .choices(["local", "optuna"])
      .default("local"),
  )
  .option("-o, --out <dir>", "with --target optuna: the folder to write the study into")
  .option(
    "--storage <url>",
    "with --target optuna: the study's RDB storage URL (default: sqlite:///DIR/study.db)",
  )
  .option("--quiet", "print nothing but errors")
  .option("--json", "print the sweep's record as JSON on stdout")
  .action((file: string, opts) =>
    run(async () => (await import("./cli/sweep.js")).sweepCommand(file, opts)),
  );

program
  .command("export")
  .description("export trained weights as an ONNX model, a Triton model repository or safetensors")
  .argument("<spec>", "spec file, or a shipped spec's name (step4)")
  .requiredOption(
    "--weights <path>",
    "checkpoint directory (mnistc train) or .safetensors file (PyTorch, the emitted train.py)",
  )
  .requiredOption("-o, --out <path>", "ONNX file, Triton repository folder, or .safetensors file")
  .option(
    "-f, --format <format>",
    "onnx | triton (OUT/<name>/config.pbtxt + 1/model.onnx) | safetensors",
    "onnx",
  )
  .action((spec: string, opts) =>
    run(async () => (await import("./cli/export.js")).exportModel(await specArg(spec), opts)),
  );

program
  .command("eval")
  .description("accuracy, loss, per-class accuracy and confusion matrix of an ONNX model")
  .argument("[model]", "ONNX file (default: models/step4.onnx), or a spec with --weights")
  .option("--weights <path>", "with a spec: its checkpoint directory or .safetensors file")
  .option("--data <dir>", "read the model's dataset from DIR (default: the one its metadata names)")
  .option("--test-limit <n>", "use the first N test images", images)
  .option("--json", "print JSON")
  .option(
    "--report <dir>",
    "also write report.json, confusion.png (heatmap) and misclassified.png (the wrong images) into DIR",
  )
  .action((model: string | undefined, opts) =>
    run(async () => (await import("./cli/eval.js")).evaluate(model, opts)),
  );

program
  .command("data")
  .description(
    "a dataset at a glance: images per class and split, per-channel mean/std for the spec, a grid of samples",
  )
  .argument("[source]", "SPEC.yaml (its dataset) or a folder (IDX, CIFAR-10 or ImageFolder)")
  .option("--data <dir>", "read the spec's dataset from DIR")
  .option("--grid <file>", "write a PNG grid of training images per class")
  .option(
    "--channels <n>",
    "a bare image folder: read as 1 (grey) or 3 (RGB) channels",
    positiveInt,
  )
  .option("--size <n>", "a bare image folder: resize to n x n", positiveInt)
  .option("--json", "print JSON")
  .action((source: string | undefined, opts) =>
    run(async () =>
      (await import("./cli/data.js")).dataCommand(
        source === undefined ? undefined : await specArg(source),
        opts,
      ),
    ),
  );

program
  .command("predict")
  .description("classify images (PNG, JPEG or PGM, any size) and name their classes")
  .argument("<files...>", "[MODEL.onnx] IMAGE... (default model: models/step4.onnx)")
  .addOption(
    new Option(
      "--preprocess <mode>",
      "digit (crop, fit 20x20, centre: handwriting), resize, or none; default the model's",
    ).choices(["digit", "resize", "none"]),
  )
  .option("--json", "print JSON")
  .action((files: string[], opts) =>
    run(async () => (await import("./cli/predict.js")).predict(files, opts)),
  );

program
  .command("quantize")
  .description(
    "a static int8 model (QDQ): per-channel int8 weights, uint8 activations calibrated on training images",
  )
  .argument("<model>", "ONNX file")
  .requiredOption("-o, --out <path>", "the int8 ONNX file to write")
  .option(
    "--calibrate <n>",
    "calibrate activation ranges on the first N training images of the model's dataset",
    images,
    1000,
  )
  .addOption(
    new Option("--method <method>", "activation ranges: min-max, or the 99.99th percentiles")
      .choices(["minmax", "percentile"])
      .default("minmax"),
  )
  .option("--data <dir>", "read the dataset from DIR (needed for a model that names none)")
  .option("--threads <n>", `onnxruntime threads, ${rangeText(RANGES.threads)}`, threads)
  .action((model: string, opts) =>
    run(async () => (await import("./cli/quantize.js")).quantize(model, opts)),
  );

program
  .command("inspect")
  .description("text dump of an ONNX model: ops, inputs, outputs, attributes, initializers")
  .argument("<model>", "ONNX file")
  .option("--json", "print JSON")
  .action((model: string, opts) =>
    run(async () => (await import("./cli/inspect.js")).inspect(model, opts)),
  );

program
  .command("serve")
  .description("HTTP service and a page (draw a digit, or upload an image) for an ONNX model")
  .argument("[model]", "ONNX file (default: models/step4.onnx)")
  .addOption(new Option("--port <n>", "port (0: a free one)").default(8080).argParser(port))
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .action((model: string | undefined, opts) =>
    run(async () => (await import("./cli/serve.js")).serve(model, opts)),
  );

// A usage error is one line and a pointer to the command's help (exit 1, through exitOverride).
oneLineErrors(program, "mnistc", "mnistc --help");
for (const cmd of program.commands) oneLineErrors(cmd, "mnistc", `mnistc ${cmd.name()} --help`);

await program.parseAsync(process.argv);
