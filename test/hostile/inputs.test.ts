// Hostile round 2, class 4: no command overwrites one of its own inputs. `export SPEC --weights W
// -o SPEC` turned the spec into ONNX bytes; every command now refuses an output whose real path
// is a file it read (by another spelling too: `x/../spec.yaml`), before writing anything, and a
// training run refuses inputs (the spec, --data, teachers) that are, or are inside, its outputs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { safetensorsFromWeights } from "../../src/backends/pytorch/weights.js";
import { compileSpec } from "../../src/compiler/index.js";
import { torchInitWeights } from "../../src/compiler/init.js";
import { packagePath } from "../../src/paths.js";
import { assertUserError, writeTfjsCheckpoint } from "../onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-inputs-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const MINIMAL_TEXT = readFileSync(
  packagePath("test", "fixtures", "specs", "good", "minimal.yaml"),
  "utf8",
);

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: dir,
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** A spec at `path` (relative to the test folder), its folders created. */
function spec(path: string, text = MINIMAL_TEXT): string {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), text);
  return path;
}

const { ir } = compileSpec(MINIMAL_TEXT, join(dir, "spec.yaml"));
assert.ok(ir);
const weights = torchInitWeights(ir, 1);
writeFileSync(join(dir, "w.safetensors"), safetensorsFromWeights(ir, weights));
writeTfjsCheckpoint(join(dir, "ckpt"), ir, weights);
const DISTILLING = `${MINIMAL_TEXT}train: { distill: { teachers: [teacher.onnx], weight: 0.5 } }\n`;

// [what, files to set up, command line, message, the input that must stay as it was, what
// must not have been written]
const cases: [string, () => void, string[], RegExp, string, string?][] = [
  [
    "export -o its spec",
    () => spec("a/spec.yaml"),
    ["export", "a/spec.yaml", "--weights", "ckpt", "-o", "a/spec.yaml"],
    /a\/spec\.yaml: this command read it as a spec file; refusing to overwrite one of its own inputs/,
    "a/spec.yaml",
  ],
  [
    "export -o its spec, spelled another way",
    () => {
      spec("b/spec.yaml");
      mkdirSync(join(dir, "b", "x"));
    },
    ["export", "b/spec.yaml", "--weights", "w.safetensors", "-o", "b/x/../spec.yaml"],
    /read it as a spec file/,
    "b/spec.yaml",
  ],
  [
    "export --format safetensors -o its weights",
    () => copyFileSync(join(dir, "w.safetensors"), join(dir, "c.safetensors")),
    [
      "export",
      spec("c.yaml"),
      "--weights",
      "c.safetensors",
      "-f",
      "safetensors",
      "-o",
      "c.safetensors",
    ],
    /read it as a safetensors file/,
    "c.safetensors",
  ],
  [
    "export -o a file of its checkpoint",
    () => spec("d.yaml"),
    ["export", "d.yaml", "--weights", "ckpt", "-o", "ckpt/model.json"],
    /read it as a checkpoint file/,
    "ckpt/model.json",
  ],
  [
    "export --format triton into the repository holding its spec",
    () => spec("repo/config/config.pbtxt"),
    ["export", "repo/config/config.pbtxt", "--weights", "ckpt", "-f", "triton", "-o", "repo"],
    /config\.pbtxt: this command read it as a spec file/,
    "repo/config/config.pbtxt",
    "repo/config/1/model.onnx",
  ],
  [
    "compile -t onnx -o its weights",
    () => copyFileSync(join(dir, "w.safetensors"), join(dir, "e.safetensors")),
    ["compile", spec("e.yaml"), "-t", "onnx", "--weights", "e.safetensors", "-o", "e.safetensors"],
    /read it as a safetensors file/,
    "e.safetensors",
  ],
  [
    "compile -t tfjs into the folder holding its spec as model.mjs",
    () => spec("f/model.mjs"),
    ["compile", "f/model.mjs", "-t", "tfjs", "-o", "f"],
    /f\/model\.mjs: this command read it as a spec file/,
    "f/model.mjs",
    "f/train.mjs",
  ],
  [
    "train with its spec inside the program folder it replaces",
    () => spec("g/program/spec.yaml"),
    ["train", "g/program/spec.yaml", "--out", "g"],
    /g\/program\/spec\.yaml: the spec is inside \S*\/g\/program, which this run writes/,
    "g/program/spec.yaml",
    "g/train.lock",
  ],
  [
    "train --force with a teacher that is the model it writes",
    () => {
      spec("h.yaml", DISTILLING);
      mkdirSync(join(dir, "h"));
      writeFileSync(join(dir, "h", "model.onnx"), "the old run's model");
    },
    ["train", "h.yaml", "--teacher", "h/model.onnx", "--out", "h", "--force"],
    /h\/model\.onnx: --teacher is \S*\/h\/model\.onnx, which this run writes/,
    "h/model.onnx",
  ],
  [
    "train with --data inside its checkpoint folder",
    () => mkdirSync(join(dir, "i", "checkpoint"), { recursive: true }),
    ["train", spec("i.yaml"), "--data", "i/checkpoint", "--out", "i", "--resume"],
    /i\/checkpoint: --data is \S*\/i\/checkpoint, which this run writes/,
    "i/checkpoint",
  ],
];

describe("no output replaces one of the command's own inputs", () => {
  for (const [what, setup, args, message, input, unwritten] of cases) {
    test(what, () => {
      setup();
      const victim = join(dir, input);
      const before = statSync(victim).isFile() ? readFileSync(victim) : undefined;
      assertUserError(cli(args), message);
      if (before) assert.deepEqual(readFileSync(victim), before, `${input} changed`);
      else assert.ok(existsSync(victim), `${input} is gone`);
      if (unwritten) assert.equal(existsSync(join(dir, unwritten)), false, `${unwritten} written`);
    });
  }

  test("an output beside its inputs is still written", () => {
    const r = cli(["export", spec("j.yaml"), "--weights", "ckpt", "-o", "j.onnx"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, "j.onnx")));
  });
});
