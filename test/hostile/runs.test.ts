// Hostile round 2, classes 2 and 3: runs that delete or mix each other. `train --force` whose new
// run cannot start (a mistyped --data, a --val too large, a teacher that is no model, an empty
// training set) leaves the old run exactly as it was, its program/ included; it is replaced only
// by a run that starts. Two runs into one --out: the second refuses, naming the first; a lock left
// by a killed run (its pid gone) or half-written does not stick.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { packagePath } from "../../src/paths.js";
import { MNIST_FILES } from "../../src/runtime/data/mnist.js";
import { LOCK_FILE, RunFolder } from "../../src/runtime/train/run-folder.js";
import { assertUserError } from "../onnx-helpers.js";
import { idxImages, idxLabels } from "./bytes.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-runs-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const MINIMAL = packagePath("test", "fixtures", "specs", "good", "minimal.yaml");
const SMALL = ["--train-limit", "64", "--test-limit", "32", "--batch-size", "32", "--epochs", "1"];

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: dir,
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** Every file under `root` with its contents, for before/after comparisons. */
function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = join(rel, entry.name);
      if (entry.isDirectory()) walk(path);
      else files[path] = readFileSync(join(root, path), "latin1");
    }
  };
  walk("");
  return files;
}

/** A finished run as far as `train` can tell (it reads none of it before the new run starts). */
function oldRun(out: string): void {
  mkdirSync(join(out, "checkpoint"), { recursive: true });
  mkdirSync(join(out, "program"), { recursive: true });
  writeFileSync(join(out, "checkpoint", "model.json"), '{"old": true}');
  writeFileSync(join(out, "checkpoint", "weights.bin"), "old weights");
  writeFileSync(join(out, "metrics.json"), '{"old": true}');
  writeFileSync(join(out, "plot.png"), "old plot");
  writeFileSync(join(out, "model.onnx"), "old model");
  writeFileSync(join(out, "program", "model.mjs"), "// the old run's program");
}

const DISTILLING = join(dir, "distilling.yaml");
writeFileSync(
  DISTILLING,
  `${readFileSync(MINIMAL, "utf8")}train: { distill: { teachers: [teacher.onnx], weight: 0.5 } }\n`,
);
writeFileSync(join(dir, "not-a-model.onnx"), "no protobuf here");
const EMPTY = join(dir, "empty-data");
mkdirSync(EMPTY);
writeFileSync(join(EMPTY, MNIST_FILES.trainImages), idxImages(0, 28, 28, new Uint8Array(0)));
writeFileSync(join(EMPTY, MNIST_FILES.trainLabels), idxLabels(0, new Uint8Array(0)));
writeFileSync(join(EMPTY, MNIST_FILES.testImages), idxImages(1, 28, 28, new Uint8Array(784)));
writeFileSync(join(EMPTY, MNIST_FILES.testLabels), idxLabels(1, new Uint8Array(1)));

describe("train --force replaces the old run only when the new one starts", () => {
  const cases: [string, string[], RegExp][] = [
    ["a mistyped --data", [MINIMAL, "--data", join(dir, "nowhere")], /nowhere: no such folder/],
    ["a --val too large", [MINIMAL, "--val", "64"], /--val 64: the validation split must leave/],
    [
      "a --teacher that is no model",
      [DISTILLING, "--teacher", join(dir, "not-a-model.onnx")],
      /not-a-model\.onnx/,
    ],
    ["an empty training set", [MINIMAL, "--data", EMPTY], /the training set is empty/],
  ];
  cases.forEach(([what, args, message], i) => {
    test(what, () => {
      const out = join(dir, `force${i}`);
      oldRun(out);
      const before = snapshot(out);
      const r = cli(["train", ...args, ...SMALL, "--out", out, "--force", "--quiet"]);
      assertUserError(r, message);
      assert.deepEqual(snapshot(out), before, "the old run is untouched, nothing is left behind");
    });
  });

  test("a run that starts replaces it, program/ included", () => {
    const out = join(dir, "force-ok");
    oldRun(out);
    const r = cli(["train", MINIMAL, ...SMALL, "--out", out, "--force", "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(readFileSync(join(out, "metrics.json"), "utf8"), /"old"/);
    assert.match(readFileSync(join(out, "program", "model.mjs"), "utf8"), /buildModel/);
    assert.notEqual(readFileSync(join(out, "model.onnx"), "latin1"), "old model");
    assert.deepEqual(readdirSync(out).sort(), [
      "checkpoint",
      "metrics.json",
      "model.onnx",
      "plot.png",
      "program",
    ]);
  });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

const lockText = (pid: number, host = hostname()) =>
  JSON.stringify({ pid, host, started: "2024-01-01T00:00:00.000Z" });

describe("one run at a time in a run folder", () => {
  const cases: [string, string | undefined, RegExp | undefined][] = [
    ["no lock", undefined, undefined],
    ["a live run's lock", lockText(process.pid), /is in use by another training run \(pid \d+,/],
    [
      "a run's lock on another host",
      lockText(process.pid, "elsewhere.example"),
      /on elsewhere\.example.*remove .*train\.lock if that run is gone/,
    ],
    ["a killed run's lock (its pid is gone)", lockText(deadPid()), undefined],
    ["a half-written lock", '{"pid": 12', undefined],
  ];
  cases.forEach(([what, existing, refusal], i) => {
    test(what, () => {
      const out = join(dir, `lock${i}`);
      mkdirSync(out);
      if (existing !== undefined) writeFileSync(join(out, LOCK_FILE), existing);
      // The folder is opened from another process: this one's pid is a live run there.
      const r = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { RunFolder } from ${JSON.stringify(packagePath("dist", "src", "runtime", "train", "run-folder.js"))};
           const f = RunFolder.open(${JSON.stringify(out)}, {});
           const held = JSON.parse((await import("node:fs")).readFileSync(${JSON.stringify(join(out, LOCK_FILE))}, "utf8"));
           if (held.pid !== process.pid) throw new Error("not locked by this run");
           f.release();`,
        ],
        { encoding: "utf8" },
      );
      if (refusal) {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, refusal);
        assert.equal(readFileSync(join(out, LOCK_FILE), "utf8"), existing, "the lock is kept");
      } else {
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(readdirSync(out), [], "released: no lock, nothing else");
      }
    });
  });

  test("in one process, the folder is locked until released", () => {
    const out = join(dir, "same-process");
    const first = RunFolder.open(out, {});
    assert.throws(() => RunFolder.open(out, {}), /is in use by another training run/);
    first.release();
    RunFolder.open(out, {}).release();
    assert.equal(existsSync(out), false, "created by the run, empty: removed");
  });

  test("two `mnistc train` into one --out: the second refuses; the first finishes", async () => {
    const out = join(dir, "two-runs");
    // Long enough to still hold the lock when the second starts: the ONNX path no longer loads
    // TensorFlow.js, so a run of two batches ends before a second node process is up.
    const step4 = packagePath("specs", "step4.yaml");
    const longer = ["--train-limit", "6400", "--test-limit", "64", "--batch-size", "64"];
    const args = [CLI, "train", step4, ...longer, "--epochs", "1", "--threads", "1", "--out", out];
    const first = spawn(process.execPath, args, {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let firstErr = "";
    first.stderr.on("data", (d: Buffer) => {
      firstErr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => first.on("exit", resolve));
    const deadline = Date.now() + 60_000;
    while (!existsSync(join(out, LOCK_FILE))) {
      assert.ok(Date.now() < deadline, `the first run never locked ${out}: ${firstErr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const second = cli(["train", step4, ...SMALL, "--out", out, "--force"]);
    assertUserError(second, /is in use by another training run \(pid \d+/);
    assert.equal(await exited, 0, firstErr);
    assert.equal(existsSync(join(out, LOCK_FILE)), false, "released at the end");
    const metrics = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")) as {
      epochs: unknown[];
    };
    assert.equal(metrics.epochs.length, 1);
  });
});
