// The PyTorch backend without running Python: golden model.py and train.py for every shipped spec
// and the fixtures that use every op and every option, the code per op, names the backend
// refuses, and the CLI around it (compile --target pytorch, export --format triton|safetensors,
// eval SPEC --weights). pytorch-run.test.ts runs what is emitted.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pyCall, pytorchBackend, torchCode, wrap } from "../src/backends/pytorch/index.js";
import {
  safetensorsFromWeights,
  torchWeightsFromSafetensors,
} from "../src/backends/pytorch/weights.js";
import { compile } from "../src/cli/compile.js";
import { exportModel } from "../src/cli/export.js";
import { compileSpec } from "../src/compiler/index.js";
import { torchInitWeights } from "../src/compiler/init.js";
import type { ModelIR } from "../src/compiler/ir.js";
import { UserError } from "../src/errors.js";
import { parseSafetensors } from "../src/formats/safetensors.js";
import { packagePath } from "../src/paths.js";
import { expectGolden } from "./helpers/golden.js";
import { assertUserError, runCli, writeTfjsCheckpoint } from "./onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-pytorch-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function compileText(text: string, file: string): ModelIR {
  const { ir, diagnostics } = compileSpec(text, file);
  assert.ok(ir, `${file} does not compile: ${JSON.stringify(diagnostics)}`);
  return ir;
}

const PYTORCH_SPECS = [
  ...readdirSync(packagePath("specs"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => packagePath("specs", f)),
  packagePath("test", "fixtures", "specs", "good", "every-op.yaml"),
  packagePath("test", "fixtures", "specs", "good", "options.yaml"),
];

const compileFile = (path: string) => compileText(readFileSync(path, "utf8"), path);

for (const path of PYTORCH_SPECS) {
  const ir = compileFile(path);
  test(`${ir.name}: model.py and train.py equal their golden files`, () => {
    const { files, diagnostics } = pytorchBackend.emit(ir, {});
    // A distilling spec's train.py leaves distillation out, and says so.
    assert.deepEqual(
      diagnostics.map((d) => d.code),
      ir.train.distill ? ["W0904"] : [],
    );
    assert.deepEqual(
      files.map((f) => f.path),
      ["model.py", "train.py"],
    );
    for (const f of files) expectGolden(`pytorch/${ir.name}/${f.path}`, String(f.contents));
  });
}

/** One block `body` of the given layers on MNIST, then flatten, linear and log_softmax. */
function tiny(layers: string[], extra: string[] = []): ModelIR {
  const text = [
    "name: tiny",
    "input: { channels: 1, height: 28, width: 28 }",
    "classes: 10",
    "layers:",
    "  - body:",
    ...layers.map((l) => `      - ${l}`),
    ...extra,
    "  - flatten",
    "  - linear: { out: 10 }",
    "  - log_softmax",
    "",
  ].join("\n");
  return compileText(text, "tiny.yaml");
}

describe("the code per op", () => {
  const modules = (ir: ModelIR) => ir.nodes.map((n) => torchCode(n).module ?? "");

  test("conv: PyTorch's arguments, defaults left out, padding same as a string", () => {
    const ir = tiny([
      "conv: { out: 8, kernel: 3 }",
      "conv: { out: 8, kernel: [3, 1], stride: [2, 1], padding: [1, 0], bias: false }",
      "conv: { out: 8, kernel: 2, padding: same, dilation: 2, groups: 8 }",
    ]);
    assert.deepEqual(modules(ir).slice(0, 3), [
      "nn.Conv2d(1, 8, kernel_size=3)",
      "nn.Conv2d(8, 8, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), bias=False)",
      'nn.Conv2d(8, 8, kernel_size=2, padding="same", dilation=2, groups=8)',
    ]);
  });

  test("batchnorm, pools, dropout by rank, gap, flatten, linear", () => {
    const ir = tiny(
      [
        "conv: { out: 4, kernel: 3 }",
        "batchnorm: { eps: 0.001, momentum: 0.2 }",
        "maxpool: { kernel: 3, stride: 2, padding: 1 }",
        "avgpool: { kernel: 2 }",
        "dropout: { p: 0.25 }",
        "gap",
      ],
      ["  - dropout"],
    );
    assert.deepEqual(modules(ir), [
      "nn.Conv2d(1, 4, kernel_size=3)",
      "nn.BatchNorm2d(4, eps=0.001, momentum=0.2)",
      "nn.MaxPool2d(3, stride=2, padding=1)",
      "nn.AvgPool2d(2)",
      "nn.Dropout2d(0.25)",
      "nn.AdaptiveAvgPool2d(1)",
      "nn.Dropout2d(0.5)", // still an image, [4, 1, 1] (every-op.yaml has one after flatten)
      "nn.Flatten()",
      "nn.Linear(4, 10)",
      "nn.LogSoftmax(dim=1)",
    ]);
    // Outside a block, parameterless layers are functional calls in forward(), as the seed's F.relu.
    const calls = ir.nodes.map((n) => torchCode(n).call?.(["x"]) ?? "");
    assert.deepEqual(calls.slice(2), [
      "F.max_pool2d(x, 3, stride=2, padding=1)",
      "F.avg_pool2d(x, 2)",
      "F.dropout2d(x, 0.25, self.training)",
      "F.adaptive_avg_pool2d(x, 1)",
      "F.dropout2d(x, 0.5, self.training)",
      "torch.flatten(x, 1)",
      "",
      "F.log_softmax(x, dim=1)",
    ]);
    assert.deepEqual(torchCode(ir.nodes[1] as ModelIR["nodes"][number]).untracked, [
      "num_batches_tracked",
    ]);
  });

  test("a block name an nn.Module cannot hold is refused, naming the block", () => {
    for (const [name, why] of [
      ["train", "nn.Module has its own"],
      ["class", "a Python keyword"],
    ] as const) {
      const ir = compileText(
        readFileSync(packagePath("specs", "step1.yaml"), "utf8").replace(
          /^ {2}- conv1:/m,
          `  - ${name}:`,
        ),
        "step1.yaml",
      );
      const { files, diagnostics } = pytorchBackend.emit(ir, {});
      assert.deepEqual(files, []);
      assert.deepEqual(
        diagnostics.map((d) => [d.code, d.message, d.span.line]),
        [
          [
            "E0902",
            `block \`${name}\` cannot be an attribute of a PyTorch nn.Module (${why}); rename the block`,
            11,
          ],
        ],
      );
    }
  });

  test("calls and text are laid out as black lays them out at 100 columns", () => {
    assert.equal(pyCall("    ", "x = ", "f", ["a", "b"]), "    x = f(a, b)");
    const long = Array.from({ length: 8 }, (_, i) => `argument_${i}=${i}`);
    assert.equal(
      pyCall("    ", "scheduler = ", "optim.lr_scheduler.OneCycleLR", long.slice(0, 6)),
      [
        "    scheduler = optim.lr_scheduler.OneCycleLR(",
        `        ${long.slice(0, 6).join(", ")}`,
        "    )",
      ].join("\n"),
    );
    const many = [...long, ...long];
    assert.equal(
      pyCall("", "", "f", many),
      ["f(", ...many.map((a) => `    ${a},`), ")"].join("\n"),
    );
    for (const line of wrap("word ".repeat(60).trim(), "# ")) assert.ok(line.length <= 100);
  });
});

/** Runs a command handler in this process, its stderr lines collected instead of printed. */
async function quietly<T>(action: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const write = process.stderr.write;
  let stderr = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await action(), stderr };
  } finally {
    process.stderr.write = write;
  }
}

async function refusedWith(action: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(
    quietly(action),
    (err: unknown) => err instanceof UserError && pattern.test(err.message),
  );
}

describe("mnistc compile --target pytorch, export --format triton | safetensors, eval --weights", () => {
  const step4 = packagePath("specs", "step4.yaml");
  const ir = compileFile(step4);
  const weights = torchInitWeights(ir, 11);
  const checkpoint = join(dir, "ckpt-step4");
  writeTfjsCheckpoint(checkpoint, ir, weights);
  const safetensors = join(dir, "step4.safetensors");
  const fromCheckpoint = join(dir, "a.onnx");

  test("compile writes model.py and train.py; --weights is refused with the way to load them", async () => {
    const out = join(dir, "compiled");
    const { value, stderr } = await quietly(() => compile(step4, { target: "pytorch", out }));
    assert.equal(value, 0);
    assert.match(stderr, /step4 -> .*model\.py, .*train\.py/);
    const emitted = pytorchBackend.emit(ir, {}).files;
    for (const f of emitted) assert.equal(readFileSync(join(out, f.path), "utf8"), f.contents);
    await refusedWith(
      () => compile(step4, { target: "pytorch", out, weights: checkpoint }),
      /--weights is not supported for --target pytorch: model\.py loads weights when it runs/,
    );
  });

  test("a checkpoint becomes a safetensors file of mnistc's names, and back to the same ONNX", async () => {
    const run = (opts: Parameters<typeof exportModel>[1]) =>
      quietly(() => exportModel(step4, opts)).then((r) => r.value);
    assert.equal(await run({ weights: checkpoint, format: "safetensors", out: safetensors }), 0);
    const back = torchWeightsFromSafetensors(ir, parseSafetensors(readFileSync(safetensors)));
    assert.ok("weights" in back);
    assert.deepEqual(back.weights, weights);
    assert.deepEqual(readFileSync(safetensors), Buffer.from(safetensorsFromWeights(ir, weights)));
    const fromSafetensors = join(dir, "b.onnx");
    assert.equal(await run({ weights: checkpoint, out: fromCheckpoint }), 0);
    assert.equal(await run({ weights: safetensors, out: fromSafetensors }), 0);
    assert.deepEqual(readFileSync(fromSafetensors), readFileSync(fromCheckpoint));
    const compiled = join(dir, "c.onnx");
    const { value } = await quietly(() =>
      compile(step4, { target: "onnx", weights: safetensors, out: compiled }),
    );
    assert.equal(value, 0);
    assert.deepEqual(readFileSync(compiled), readFileSync(fromCheckpoint));
  });

  test("eval SPEC --weights scores the same model as eval of the exported file (the CLI)", () => {
    const score = (args: string[]) => {
      const e = runCli(["eval", ...args, "--test-limit", "100", "--json"]);
      assert.equal(e.status, 0, e.stderr);
      const { accuracy, loss, model } = JSON.parse(e.stdout);
      return { accuracy, loss, file: model.file };
    };
    const direct = score([fromCheckpoint]);
    const viaSpec = score([step4, "--weights", safetensors]);
    assert.deepEqual({ ...viaSpec, file: direct.file }, direct);
    assert.equal(viaSpec.file, safetensors);
    assertUserError(
      runCli(["eval", fromCheckpoint, "--weights", safetensors]),
      /--weights goes with a spec: mnistc eval SPEC\.yaml --weights WEIGHTS/,
    );
  });

  test("--format triton writes REPO/<name>/config.pbtxt and REPO/<name>/1/model.onnx", async () => {
    const repo = join(dir, "repo");
    const { value, stderr } = await quietly(() =>
      exportModel(step4, { weights: checkpoint, format: "triton", out: repo }),
    );
    assert.equal(value, 0);
    assert.match(stderr, /wrote Triton model repository .*repo: .*config\.pbtxt, .*model\.onnx/);
    expectGolden(
      "triton/step4/config.pbtxt",
      readFileSync(join(repo, "step4", "config.pbtxt"), "utf8"),
    );
    assert.deepEqual(
      readFileSync(join(repo, "step4", "1", "model.onnx")),
      readFileSync(fromCheckpoint),
    );
    assert.deepEqual(readdirSync(join(repo, "step4")).sort(), ["1", "config.pbtxt"]);
    await refusedWith(
      () => exportModel(step4, { weights: checkpoint, format: "tflite", out: repo }),
      /^unknown format "tflite" \(known formats: onnx, triton, safetensors\)$/,
    );
  });

  test("a file that is no safetensors is named, with what is wrong (the CLI: one line, exit 1)", () => {
    const notes = join(dir, "notes.txt");
    writeFileSync(notes, "these are my notes, not weights\n");
    assertUserError(
      runCli(["export", step4, "--weights", notes, "-o", join(dir, "n.onnx")]),
      /notes\.txt: not a safetensors file: header length \d+ is over the 100000000-byte limit/,
    );
  });
});
