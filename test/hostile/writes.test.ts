// Hostile class 3: writes never clobber. Outputs are written atomically as regular files and never
// replace a symlink, FIFO, device or folder; `train` into a folder holding a run refuses without
// --resume/--force; stale checkpoint temporaries of a killed run are removed; an empty training set
// is an error; a closed stderr during training loses only the log lines.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { UserError } from "../../src/errors.js";
import { packagePath } from "../../src/paths.js";
import { MNIST_FILES } from "../../src/runtime/data/mnist.js";
import { removeStaleTemps, writeDirAtomic } from "../../src/runtime/train/checkpoint.js";
import { checkOutFolder, RunFolder } from "../../src/runtime/train/run-folder.js";
import { writeFileAtomic } from "../../src/util/files.js";
import { assertUserError, runCli } from "../onnx-helpers.js";
import { idxImages, idxLabels } from "./bytes.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-wr-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const MINIMAL = packagePath("test", "fixtures", "specs", "good", "minimal.yaml");

describe("atomic writes refuse what is not a regular file", () => {
  const victim = join(dir, "victim.txt");
  writeFileSync(victim, "keep me");
  const targets: [string, () => string, RegExp][] = [
    [
      "a symlink",
      () => {
        symlinkSync(victim, join(dir, "link"));
        return join(dir, "link");
      },
      /is a symbolic link; refusing/,
    ],
    [
      "a FIFO",
      () => {
        spawnSync("mkfifo", [join(dir, "fifo")]);
        return join(dir, "fifo");
      },
      /is a FIFO \(named pipe\); refusing/,
    ],
    ["a device", () => "/dev/null", /is a device; refusing/],
    [
      "a folder",
      () => {
        mkdirSync(join(dir, "folder"));
        return join(dir, "folder");
      },
      /is a folder; refusing/,
    ],
  ];
  for (const [name, make, pattern] of targets) {
    test(name, () => {
      const path = make();
      const before = lstatSync(path);
      assert.throws(
        () => writeFileAtomic(path, "x"),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
      assert.equal(lstatSync(path).mode, before.mode, "left as it was");
      assert.equal(readFileSync(victim, "utf8"), "keep me");
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes(".tmp-")),
        [],
        "no temporary left",
      );
    });
  }
  test("a regular file is replaced, keeping its permission bits", () => {
    const file = join(dir, "plain.txt");
    writeFileSync(file, "old", { mode: 0o600 });
    writeFileAtomic(file, "new");
    assert.equal(readFileSync(file, "utf8"), "new");
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
  });
  test("a checkpoint folder that is a symlink is refused, not replaced", () => {
    mkdirSync(join(dir, "elsewhere"));
    symlinkSync(join(dir, "elsewhere"), join(dir, "checkpoint"));
    assert.throws(
      () => writeDirAtomic(join(dir, "checkpoint"), { "a.bin": "x" }),
      /is a symbolic link; refusing/,
    );
    assert.ok(lstatSync(join(dir, "checkpoint")).isSymbolicLink());
  });
  test("the CLI refuses to compile over a symlink, with one line", () => {
    assertUserError(
      runCli(["compile", MINIMAL, "-t", "onnx", "-o", join(dir, "link")]),
      /is a symbolic link; refusing/,
    );
  });
  test("an unwritable --out under /proc is one line, quickly", () => {
    const r = runCli(["compile", MINIMAL, "-t", "tfjs", "-o", "/proc/mnistc-out"]);
    assertUserError(r, /\/proc\/mnistc-out: cannot create the folder/);
  });
});

describe("train's output folder", () => {
  test("a folder holding a run is refused without --resume or --force", () => {
    const out = join(dir, "run");
    mkdirSync(out);
    writeFileSync(join(out, "metrics.json"), "{}");
    assertUserError(
      runCli(["train", MINIMAL, "--out", out, "--epochs", "1"]),
      /already holds a run \(metrics.json\); pass --resume to continue it or --force/,
    );
    assert.deepEqual(readdirSync(out), ["metrics.json"], "nothing written");
    assert.throws(() => checkOutFolder(out, { resume: true, force: true }), /cannot be combined/);
    const folder = RunFolder.open(out, { force: true });
    assert.ok(existsSync(join(out, "metrics.json")), "kept until the new run is ready to start");
    folder.ready();
    assert.equal(existsSync(join(out, "metrics.json")), false, "--force replaces the old run");
    folder.release();
  });
  test("stale .checkpoint.tmp-<pid> folders of dead runs are removed; a live run's is kept", () => {
    const out = join(dir, "stale");
    mkdirSync(join(out, ".checkpoint.tmp-999999"), { recursive: true });
    mkdirSync(join(out, `.checkpoint.tmp-${process.ppid}`));
    const removed = removeStaleTemps(join(out, "checkpoint"));
    assert.deepEqual(removed, [join(out, ".checkpoint.tmp-999999")]);
    assert.ok(existsSync(join(out, `.checkpoint.tmp-${process.ppid}`)));
  });
  test("an empty training set is an error, not a run with loss 0", () => {
    const data = join(dir, "empty-data");
    mkdirSync(data);
    writeFileSync(join(data, MNIST_FILES.trainImages), idxImages(0, 28, 28, new Uint8Array(0)));
    writeFileSync(join(data, MNIST_FILES.trainLabels), idxLabels(0, new Uint8Array(0)));
    writeFileSync(join(data, MNIST_FILES.testImages), idxImages(1, 28, 28, new Uint8Array(784)));
    writeFileSync(join(data, MNIST_FILES.testLabels), idxLabels(1, new Uint8Array(1)));
    const out = join(dir, "empty-run");
    assertUserError(
      runCli(["train", MINIMAL, "--out", out, "--data", data, "--quiet"]),
      /the training set is empty/,
    );
    assert.equal(existsSync(join(out, "checkpoint")), false);
  });
  test("a closed stderr during training: the run finishes and writes its files", async () => {
    const out = join(dir, "stderr-closed");
    const child = spawn(
      process.execPath,
      [
        packagePath("dist", "src", "cli.js"),
        "train",
        MINIMAL,
        "--out",
        out,
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--test-limit",
        "32",
        "--batch-size",
        "32",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    child.stderr.destroy(); // the reading end goes away: every later write to stderr is EPIPE
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0);
    assert.ok(existsSync(join(out, "model.onnx")));
  });
});
