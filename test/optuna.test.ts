// The Optuna target end to end: `mnistc sweep FILE --target optuna` emits the study of a tiny sweep
// (sep4k, one epoch on 1,500 images, an over-budget choice) and two workers run it at once on one
// SQLite file. Checks that they shared the study (trials from both, the finished count reached),
// that over-budget candidates were rejected before training, and that every run scored on the
// validation split. Needs Debian's python3-optuna and python3-torch (.ci/run installs them); skips,
// saying so, without them. `npm run ref:optuna` runs it alone.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { packagePath } from "../src/paths.js";

const python = "/usr/bin/python3";
const missing =
  spawnSync(python, ["-c", "import optuna, torch"], { stdio: "ignore" }).status === 0
    ? false
    : "needs Debian's python3-optuna and python3-torch";

test("two Optuna workers share one SQLite study of a sweep", { skip: missing }, async (ctx) => {
  const tmp = mkdtempSync(join(tmpdir(), "mnistc-optuna-"));
  try {
    const sweep = join(tmp, "tiny.yaml");
    writeFileSync(
      sweep,
      `base: ${packagePath("specs", "sep4k.yaml")}
space:
  layers.conv4.1.out: [16, 48]
  train.scheduler.max_lr: { loguniform: [0.02, 0.2] }
constraints: { budget: 4000 }
trials: 4
sampler: { type: tpe, seed: 1, startup: 2 }
val: 300
train_limit: 1500
epochs: 1
`,
    );
    const study = join(tmp, "study");
    const cli = packagePath("dist", "src", "cli.js");
    const emit = spawnSync(
      process.execPath,
      [cli, "sweep", sweep, "--target", "optuna", "-o", study],
      {
        encoding: "utf8",
      },
    );
    assert.equal(emit.status, 0, emit.stderr);
    const started = Date.now();
    const worker = () =>
      new Promise<number | null>((resolve) => {
        const p = spawn(python, [join(study, "study.py")], { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.on("data", (d: Buffer) => {
          err += d.toString();
        });
        p.on("close", (code) => {
          if (code !== 0) process.stderr.write(err);
          resolve(code);
        });
      });
    assert.deepEqual(await Promise.all([worker(), worker()]), [0, 0]);
    const seconds = (Date.now() - started) / 1000;
    const dump = spawnSync(
      python,
      [
        "-c",
        `import json, optuna
s = optuna.load_study(study_name="tiny", storage="sqlite:///${join(study, "study.db")}")
print(json.dumps([{"n": t.number, "state": t.state.name, "value": t.value, "params": t.params, "attrs": t.user_attrs} for t in s.trials]))`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(dump.status, 0, dump.stderr);
    type Trial = {
      n: number;
      state: string;
      value: number | null;
      params: Record<string, number>;
      attrs: Record<string, unknown>;
    };
    const trials = JSON.parse(dump.stdout) as Trial[];
    const complete = trials.filter((t) => t.state === "COMPLETE");
    assert.ok(complete.length >= 4, `${complete.length} finished trials`);
    const workers = new Set(trials.map((t) => t.attrs.worker));
    assert.equal(workers.size, 2, "both workers ran trials of the one study");
    for (const t of trials) {
      if (t.params["layers.conv4.1.out"] === 48) {
        assert.equal(t.state, "PRUNED");
        assert.match(String(t.attrs.rejected), /error E0301: 5,050 trainable parameters/);
      } else if (t.state === "COMPLETE") {
        assert.equal(t.attrs.trainable, 3642);
        const metrics = JSON.parse(
          readFileSync(
            join(study, "runs", `trial${String(t.n).padStart(4, "0")}`, "seed1", "metrics.json"),
            "utf8",
          ),
        ) as { testExamples: number; valExamples: number; epochs: { valAccuracy: number }[] };
        assert.deepEqual([metrics.testExamples, metrics.valExamples], [0, 300]);
        assert.equal(t.value, metrics.epochs[0]?.valAccuracy);
      }
    }
    ctx.diagnostic(
      `${trials.length} trials (${complete.length} finished, ${trials.length - complete.length} rejected or pruned) by 2 workers on one SQLite study in ${seconds.toFixed(1)} s`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
