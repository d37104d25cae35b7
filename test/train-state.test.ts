// Training state that belongs to no backend, end to end through the command line:
//   - the default ONNX training path never loads TensorFlow.js (a loader probe records every module
//     the process loads; the same probe on `--backend tfjs` sees tfjs, so the probe can fail);
//   - a run moves between backends through its checkpoint: an ONNX run continues under the
//     emitted `node <out>/program/train.mjs --resume` (tfjs), and that one under `mnistc train`;
//   - a checkpoint written by mnistc before the neutral format (tfjs's layers model) resumes
//     exactly where that mnistc would have gone on, and exports and evaluates as before.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { packagePath } from "../src/paths.js";
import type { EpochMetrics, RunMetrics } from "../src/runtime/train/metrics.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-train-state-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = packagePath("dist", "src", "cli.js");
const everyOp = packagePath("test", "fixtures", "specs", "good", "every-op.yaml");
const SMALL = ["--train-limit", "64", "--test-limit", "64", "--batch-size", "32", "--threads", "1"];

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The probe: a module-resolution hook (every ESM import, resolved) and, at exit, every CommonJS
// module in require's cache (tfjs's Node build is CommonJS, and CommonJS modules required by
// others never pass the ESM hook). Both append to MNISTC_PROBE_OUT.
const hooks = join(tmp, "probe-hooks.mjs");
writeFileSync(
  hooks,
  `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.MNISTC_PROBE_OUT, "import " + resolved.url + "\\n");
  return resolved;
}
`,
);
const probe = join(tmp, "probe.mjs");
writeFileSync(
  probe,
  `import { appendFileSync } from "node:fs";
import { createRequire, register } from "node:module";
register(${JSON.stringify(pathToFileURL(hooks).href)});
process.on("exit", () => {
  const cache = Object.keys(createRequire(import.meta.url).cache);
  appendFileSync(process.env.MNISTC_PROBE_OUT, cache.map((f) => "require " + f + "\\n").join(""));
});
`,
);

/** The modules `mnistc train --backend <backend>` loads (a short run of every-op). */
function modulesLoaded(backend: string): string[] {
  const record = join(tmp, `modules-${backend}.txt`);
  writeFileSync(record, "");
  const r = run(
    [
      "--import",
      probe,
      cli,
      "train",
      everyOp,
      ...SMALL,
      "--epochs",
      "1",
      "--backend",
      backend,
      "--out",
      join(tmp, `probe-${backend}`),
      "--quiet",
    ],
    { MNISTC_PROBE_OUT: record },
  );
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(record, "utf8").split("\n").filter(Boolean);
}

test("the ONNX training path (the default) loads no module of TensorFlow.js", () => {
  const onnx = modulesLoaded("onnx");
  // The probe saw the run: onnxruntime-node (CommonJS) and the training loop (ESM).
  assert.ok(onnx.some((m) => m.startsWith("require ") && m.includes("onnxruntime-node")));
  assert.ok(onnx.some((m) => m.startsWith("import ") && m.endsWith("/runtime/train/loop.js")));
  assert.deepEqual(
    onnx.filter((m) => m.includes("@tensorflow")),
    [],
  );
  // The same probe on the tfjs path sees tfjs, both ways it can be loaded.
  const tfjs = modulesLoaded("tfjs");
  assert.ok(tfjs.some((m) => m.startsWith("import ") && m.includes("@tensorflow/tfjs")));
  assert.ok(tfjs.some((m) => m.startsWith("require ") && m.includes("@tensorflow/tfjs-core")));
});

const lastEpochs = (stdout: string) => (JSON.parse(stdout) as RunMetrics).epochs;

test("a run moves between backends through its checkpoint: mnistc train, train.mjs, mnistc train", () => {
  const out = join(tmp, "across");
  const first = run([cli, "train", everyOp, ...SMALL, "--epochs", "1", "--out", out, "--json"]);
  assert.equal(first.code, 0, first.stderr);
  // The tfjs program the ONNX run left beside its checkpoint continues it.
  const program = join(out, "program", "train.mjs");
  const second = run([program, "--resume", "--epochs", "2", "--out", out, "--json"]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /resuming from .*checkpoint after epoch 1/);
  assert.match(second.stderr, /^engine: \w+ \(TensorFlow\.js [\d.]+\)$/m);
  const third = run([cli, "train", everyOp, "--resume", "--epochs", "3", "--out", out, "--json"]);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /resuming from .*checkpoint after epoch 2/);
  const epochs = lastEpochs(third.stdout);
  assert.deepEqual(
    epochs.map((e) => e.epoch),
    [1, 2, 3],
  );
  assert.deepEqual(epochs.slice(0, 2), lastEpochs(second.stdout));
  assert.ok(epochs.every((e) => Number.isFinite(e.trainLoss) && Number.isFinite(e.testLoss)));
});

const fixture = packagePath("test", "fixtures", "checkpoints", "every-op-v1");
// The spec as it was when that mnistc wrote the checkpoint (every-op.yaml has grown since).
const fixtureSpec = packagePath("test", "fixtures", "checkpoints", "every-op-v1.yaml");
const expected = JSON.parse(
  readFileSync(packagePath("test", "fixtures", "checkpoints", "every-op-v1.expected.json"), "utf8"),
) as { epochs: EpochMetrics[] };

test("a checkpoint of mnistc before the neutral format resumes exactly where it left off", () => {
  const out = join(tmp, "legacy");
  cpSync(fixture, join(out, "checkpoint"), { recursive: true });
  const r = run(
    [cli, "train", fixtureSpec, "--resume", "--epochs", "2", "--threads", "1"].concat([
      "--out",
      out,
      "--json",
    ]),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /resuming from .*checkpoint after epoch 1/);
  const [, ours] = lastEpochs(r.stdout);
  const theirs = expected.epochs[1];
  assert.ok(ours && theirs);
  for (const key of ["trainLoss", "trainAccuracy", "testLoss", "testAccuracy", "lr"] as const) {
    assert.ok(
      Math.abs((ours[key] ?? Number.NaN) - (theirs[key] ?? Number.NaN)) < 1e-6,
      `${key}: ${ours[key]} now, ${theirs[key]} by the mnistc that wrote the checkpoint`,
    );
  }
  // The run's checkpoint is now in the neutral format.
  const names = ["optimizer.safetensors", "training.json", "weights.safetensors"];
  for (const f of names) assert.ok(readFileSync(join(out, "checkpoint", f)).length > 0, f);
});

test("a checkpoint of mnistc before the neutral format exports and evaluates as before", () => {
  const onnxFile = join(tmp, "legacy.onnx");
  const exported = run([cli, "export", fixtureSpec, "--weights", fixture, "-o", onnxFile]);
  assert.equal(exported.code, 0, exported.stderr);
  const direct = run([
    cli,
    "eval",
    fixtureSpec,
    "--weights",
    fixture,
    "--test-limit",
    "64",
    "--json",
  ]);
  const viaFile = run([cli, "eval", onnxFile, "--test-limit", "64", "--json"]);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(viaFile.code, 0, viaFile.stderr);
  const [a, b] = [JSON.parse(direct.stdout), JSON.parse(viaFile.stdout)];
  // What the run that wrote the checkpoint measured after its epoch 1.
  const epoch1 = expected.epochs[0];
  assert.equal(a.accuracy, epoch1?.testAccuracy);
  assert.ok(Math.abs(a.loss - (epoch1?.testLoss ?? Number.NaN)) < 1e-5, `${a.loss}`);
  assert.deepEqual([b.accuracy, b.loss], [a.accuracy, a.loss]);
});
