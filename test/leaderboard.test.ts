// docs/results: the leaderboard is what `npm run docs:results` writes from the committed runs, and
// each committed model scores what its run's last epoch measured.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { packagePath } from "../src/paths.js";
import { placeLabels } from "../src/runtime/report/curve.js";
import {
  leaderboard,
  RESULTS_DIR,
  readMetrics,
  readRows,
  readTuningRuns,
  runPage,
  TUNING_DIR,
  tuningPage,
} from "../tools/leaderboard.js";

const rows = readRows();

test("curve labels: a validation run's label is left out where it would cover another's, full runs share", () => {
  const point = (name: string, parameters: number, accuracy: number, split = "validation") => ({
    name,
    parameters,
    accuracy,
    split: split as "validation" | "test",
  });
  const placed = placeLabels([
    point("low", 7034, 99.3),
    point("covered", 7034, 99.41),
    point("top", 7100, 99.42),
    point("full run", 7034, 99.395, "test"),
    point("far", 16478, 99.405),
    point("another full run", 7034, 99.39, "test"),
  ]);
  const label = (name: string) => placed.find((p) => p.name === name)?.label;
  assert.equal(label("full run"), "full run, another full run"); // full runs close by share one
  assert.equal(label("another full run"), "");
  assert.equal(label("top"), "top");
  assert.equal(label("covered"), ""); // 0.01 below top, 0.015 above the full run
  assert.equal(label("low"), "low");
  assert.equal(label("far"), "far"); // another parameter count
  assert.equal(placed.length, 6);
});

test("docs/results/README.md is up to date (npm run docs:results rewrites it)", () => {
  assert.equal(readFileSync(join(RESULTS_DIR, "README.md"), "utf8"), leaderboard(rows));
});

test("docs/results/tuning/README.md is up to date", () => {
  assert.equal(readFileSync(join(TUNING_DIR, "README.md"), "utf8"), tuningPage(readTuningRuns()));
});

for (const row of rows.filter((r) => r.run.notes !== undefined)) {
  test(`docs/results/${row.folder}/README.md is up to date`, () => {
    const page = readFileSync(join(RESULTS_DIR, row.folder, "README.md"), "utf8");
    assert.equal(page, runPage(row, readMetrics(row.folder)));
  });
}

for (const row of rows.filter((r) => r.run.model !== undefined)) {
  test(`${row.run.model}: mnistc eval gives ${row.folder}'s final test accuracy exactly`, () => {
    const last = readMetrics(row.folder).epochs.at(-1);
    const cli = packagePath("dist", "src", "cli.js");
    const r = spawnSync(
      process.execPath,
      [cli, "eval", packagePath(row.run.model ?? ""), "--json"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { accuracy: number; loss: number; count: number };
    assert.equal(report.count, 10000);
    assert.equal(report.accuracy, last?.testAccuracy);
    assert.ok(Math.abs(report.loss - (last?.testLoss ?? Number.NaN)) < 1e-4, `loss ${report.loss}`);
  });
}
