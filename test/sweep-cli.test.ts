// `mnistc sweep` end to end on the shipped example (sweeps/example.yaml: a grid of 4 candidates
// on sep4k, two over the budget; one epoch on 3,000 images): killed mid-trial with its children,
// run again, and every trial is recorded once, trained or rejected, none lost or repeated.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { packagePath } from "../src/paths.js";
import type { SweepState } from "../src/sweep/trials.js";
import { killGroup } from "./helpers/process-group.js";

const tmp = mkdtempSync(join(tmpdir(), "mnistc-sweep-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cli = packagePath("dist", "src", "cli.js");

/** The shipped example, its base spec given by absolute path so it runs from a copy. */
function exampleCopy(name: string, extra = ""): string {
  const text = readFileSync(packagePath("sweeps", "example.yaml"), "utf8").replace(
    /^base: .*$/m,
    `base: ${packagePath("specs", "sep4k.yaml")}`,
  );
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, text + extra);
  return file;
}

const readState = (file: string): SweepState =>
  JSON.parse(readFileSync(file.replace(/\.yaml$/, "/trials.json"), "utf8")) as SweepState;

test("mnistc sweep: killed mid-trial, resumed: no trial lost or repeated, over-budget ones never trained", async () => {
  const file = exampleCopy("example");
  // Its own process group, so the kill takes its `mnistc train` children too (as Ctrl-C would).
  const first = spawn(process.execPath, [cli, "sweep", file, "--jobs", "1"], {
    detached: true,
    stdio: "ignore",
  });
  const stateFile = file.replace(/\.yaml$/, "/trials.json");
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    if (!existsSync(stateFile)) continue;
    const running = readState(file).trials.flatMap((t) =>
      t.runs.filter((r) => r.status === "running"),
    );
    if (running.length > 0) break;
  }
  await sleep(800);
  const closed = new Promise((resolve) => first.on("close", resolve));
  await killGroup(first.pid as number);
  await closed;
  const killed = readState(file);
  const wasRunning = killed.trials.find((t) => t.runs.some((r) => r.status === "running"));
  assert.ok(wasRunning, "a trial was running when the sweep was killed");

  const second = spawnSync(process.execPath, [cli, "sweep", file, "--jobs", "2", "--json"], {
    encoding: "utf8",
  });
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`${wasRunning.id} seed 1: (starting|resuming)`));
  const state = JSON.parse(second.stdout) as SweepState & { best: string };
  // The grid: 4 candidates, each proposed once; 48 channels break the 4,000 budget.
  assert.equal(state.proposals, 4);
  assert.deepEqual(
    state.trials.map((t) => `${t.id} ${t.params["layers.conv4.1.out"]} ${t.status}`),
    ["t001 16 done", "t002 16 done", "t003 48 rejected", "t004 48 rejected"],
  );
  for (const t of state.trials.filter((t) => t.status === "rejected")) {
    assert.match(
      t.rejected?.[0] ?? "",
      /error E0301: 5,050 trainable parameters, over the budget of 4,000/,
    );
    assert.equal(t.runs.length, 0);
    assert.equal(existsSync(join(tmp, "example", "trials", t.id, "seed1")), false);
  }
  for (const t of state.trials.filter((t) => t.status === "done")) {
    assert.equal(t.trainable, 3642);
    const [run] = t.runs;
    assert.equal(run?.valAccuracy.length, 1);
    assert.equal(run?.starts, t.id === wasRunning.id ? 2 : 1);
    assert.ok((t.objective ?? 0) > 0.1, `${t.id}: ${t.objective}`);
    // The run scored on the held-out split; the test set was never read.
    const metrics = JSON.parse(
      readFileSync(join(tmp, "example", "trials", t.id, "seed1", "metrics.json"), "utf8"),
    ) as { testExamples: number; valExamples: number; options: { val: number } };
    assert.deepEqual(
      [metrics.testExamples, metrics.valExamples, metrics.options.val],
      [0, 500, 500],
    );
  }
  const page = readFileSync(join(tmp, "example", "README.md"), "utf8");
  assert.match(page, /## Rejected by the compiler \(2, never trained\)/);
  assert.match(page, new RegExp(`\\| 1 \\| \\[${state.best}\\]`));
  assert.ok(
    readFileSync(join(tmp, "example", "curve.png"))
      .subarray(1, 4)
      .equals(Buffer.from("PNG")),
  );

  // Run again: nothing left to do, nothing repeated.
  const third = spawnSync(process.execPath, [cli, "sweep", file, "--json"], { encoding: "utf8" });
  assert.equal(third.status, 0, third.stderr);
  assert.deepEqual(JSON.parse(third.stdout).trials, state.trials);
});

test("mnistc sweep: a changed sweep file is refused, an invalid one reported as file:line:col", () => {
  const file = exampleCopy("changed");
  mkdirSync(join(tmp, "changed"));
  const record = { version: 1, sweep: file, fingerprint: "0", proposals: 0, trials: [] };
  writeFileSync(join(tmp, "changed", "trials.json"), JSON.stringify(record));
  const changed = spawnSync(process.execPath, [cli, "sweep", file], { encoding: "utf8" });
  assert.equal(changed.status, 1);
  assert.match(changed.stderr, /^mnistc: error: .*trials\.json records another version of/);
  const bad = exampleCopy("bad", "early_stop: { type: asha, rungs: [0] }\n");
  const r = spawnSync(process.execPath, [cli, "sweep", bad], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /bad\.yaml:\d+:\d+: error E0105: `early_stop.rungs\[0\]` must be ≥ 1, got 0/,
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
});

test("mnistc sweep: a second sweep of the same file refuses; a killed one's lock is taken over", () => {
  // Every candidate over a budget of 1,000: nothing trains.
  const file = exampleCopy("locked");
  writeFileSync(file, readFileSync(file, "utf8").replace("budget: 4000", "budget: 1000"));
  const lock = join(tmp, "locked", "sweep.lock");
  mkdirSync(join(tmp, "locked"));
  // This test's own process holds it, as a running sweep would.
  const live = { pid: process.pid, host: hostname(), started: "2025-01-01T00:00:00.000Z" };
  writeFileSync(lock, JSON.stringify(live));
  const refused = spawnSync(process.execPath, [cli, "sweep", file], { encoding: "utf8" });
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(
      `^mnistc: error: .*locked is in use by another \`mnistc sweep .*locked.yaml\` \\(pid ${process.pid}, started 2025-01-01`,
    ),
  );
  assert.equal(existsSync(join(tmp, "locked", "trials.json")), false);
  assert.deepEqual(JSON.parse(readFileSync(lock, "utf8")), live);
  // A process that is gone (a sweep killed with SIGKILL) leaves a stale lock: taken over.
  const gone = spawnSync(process.execPath, ["-e", ""]).pid;
  writeFileSync(lock, JSON.stringify({ ...live, pid: gone }));
  const r = spawnSync(process.execPath, [cli, "sweep", file, "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const state = JSON.parse(r.stdout) as SweepState;
  assert.deepEqual(
    state.trials.map((t) => t.status),
    ["rejected", "rejected", "rejected", "rejected"],
  );
  assert.equal(existsSync(lock), false, "released at the end");
});
