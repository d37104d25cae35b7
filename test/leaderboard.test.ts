// docs/results: the leaderboard is what `npm run docs:results` writes from the committed runs, and
// each committed model scores what its run's last epoch measured.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { packagePath } from "../src/paths.js";
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
