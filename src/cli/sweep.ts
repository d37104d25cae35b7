// `mnistc sweep FILE [--jobs N] [--json]`: runs a sweep file's trials on this machine. Candidates
// come from the sampler; each is compiled here first (a rejected one is recorded with its
// diagnostics and never trained); each trial's seeds run as `mnistc train SPEC --val N --threads 1`
// children, --jobs at once; early stopping reads each run's metrics.json (written after every
// epoch) and ends a run at a rung by killing it. Everything is recorded in `<dir>/<name>/trials.json`
// (atomically, before and after every start), so a sweep killed at any moment resumes: a run that
// was going is started again with `train --resume` (from its last epoch's checkpoint), and a
// proposal recorded is never proposed again. `<dir>/<name>/sweep.lock` keeps a second sweep of the
// file out while one runs (a killed sweep's lock is stale and taken over).
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve as absolute, basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatDiagnostic } from "../compiler/format.js";
import { nameProblem } from "../compiler/names.js";
import { readFailure, UserError } from "../errors.js";
import type { RunMetrics } from "../runtime/train/metrics.js";
import { formatDuration, StatusLine } from "../runtime/train/progress.js";
import { FileLock } from "../runtime/train/run-folder.js";
import { type BaseSource, parseSweep, type Sweep } from "../sweep/file.js";
import { candidateText, showValue } from "../sweep/space.js";
import {
  checkCandidate,
  leaderboardPage,
  propose,
  type RunRecord,
  ranked,
  runMetric,
  type SweepState,
  stopsAt,
  type TrialRecord,
  trainedTrials,
  trialId,
} from "../sweep/trials.js";
import { ensureDir, readRegularFile, writeFileAtomic } from "../util/files.js";

export interface SweepCliOptions {
  jobs?: number;
  json?: boolean;
  quiet?: boolean;
  target?: string;
  out?: string;
  storage?: string;
}

const MAX_TEXT = 1 << 20;

function readText(path: string, what: string): string {
  return readRegularFile(path, { maxBytes: MAX_TEXT, what }).toString("utf8");
}

/** The sweep file, parsed and checked against its base spec; diagnostics printed. */
export function loadSweep(file: string): Sweep | undefined {
  let text: string;
  try {
    text = readText(file, "a sweep file");
  } catch (err) {
    throw new UserError(`cannot read sweep ${file}: ${readFailure(err, "a sweep file")}`);
  }
  const name = basename(file, extname(file));
  const problem = nameProblem(name);
  if (problem) throw new UserError(`${file}: the sweep's name cannot be a folder name: ${problem}`);
  const readBase = (path: string): BaseSource => {
    try {
      return { text: readText(path, "a spec file") };
    } catch (err) {
      return { problem: readFailure(err, "a spec file") };
    }
  };
  const { sweep, diagnostics } = parseSweep(text, file, name, readBase);
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  return sweep;
}

function fingerprint(sweep: Sweep): string {
  const { space, constraints, metric, seeds, sampler, earlyStop, val, trainLimit, epochs } = sweep;
  const what = { space, constraints, metric, seeds, sampler, earlyStop, val, trainLimit, epochs };
  return createHash("sha256")
    .update(JSON.stringify(what))
    .update(sweep.baseText)
    .digest("hex")
    .slice(0, 16);
}

/** The recorded state, or a fresh one; a record of another sweep (changed file) is refused. */
function openState(sweep: Sweep, dir: string, file: string): SweepState {
  const path = join(dir, "trials.json");
  const print = fingerprint(sweep);
  if (!existsSync(path)) {
    return { version: 1, sweep: file, fingerprint: print, proposals: 0, trials: [] };
  }
  // Read as the sweep's own output, not an input (which files.ts would refuse to replace).
  let state: SweepState;
  try {
    state = JSON.parse(readFileSync(path, "utf8")) as SweepState;
  } catch (err) {
    throw new UserError(`${path}: not a sweep record (${readFailure(err, "a sweep record")})`);
  }
  if (typeof state !== "object" || state === null || !Array.isArray(state.trials)) {
    throw new UserError(`${path}: not a sweep record (no list of trials)`);
  }
  if (state.fingerprint !== print) {
    throw new UserError(
      `${path} records another version of ${file} (its space, recipe or base spec changed; only \`trials:\` may change between runs); move ${dir} away to start afresh`,
    );
  }
  // A run that was going when the sweep stopped goes again (resuming its checkpoint).
  for (const t of state.trials)
    for (const r of t.runs) if (r.status === "running") r.status = "queued";
  for (const t of state.trials) if (t.status === "running") t.status = "queued";
  return state;
}

/** This package's `mnistc` (the children run the same build as the sweep). */
const CLI = fileURLToPath(new URL("../cli.js", import.meta.url));

function trainCommand(sweep: Sweep, spec: string, out: string, seed: number): string[] {
  return [
    "train",
    spec,
    "--val",
    String(sweep.val),
    "--threads",
    "1",
    "--out",
    out,
    "--json",
    "--quiet",
    "--seed",
    String(seed),
    ...(sweep.trainLimit !== undefined ? ["--train-limit", String(sweep.trainLimit)] : []),
    ...(sweep.epochs !== undefined ? ["--epochs", String(sweep.epochs)] : []),
  ];
}

interface Active {
  trial: TrialRecord;
  run: RunRecord;
  child: ChildProcess;
  started: number;
  stderr: string;
  stopping: boolean;
}

const pct = (f: number | undefined) => (f === undefined ? "?" : `${(100 * f).toFixed(2)}%`);

/** Reads a run's metrics.json (atomically replaced after each epoch), or undefined. */
function readRunMetrics(dir: string): RunMetrics | undefined {
  const path = join(dir, "metrics.json");
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as RunMetrics;
  } catch {
    return undefined;
  }
}

/** The sweep reads validation metrics only: a run that tested on the test set is a bug here. */
function valAccuracies(m: RunMetrics, where: string): number[] {
  if (m.testExamples !== 0 || m.valExamples === undefined) {
    throw new Error(`${where}: a sweep's run read the test set (testExamples ${m.testExamples})`);
  }
  return m.epochs.map((e) => e.valAccuracy ?? Number.NaN);
}

export async function sweepCommand(file: string, opts: SweepCliOptions): Promise<number> {
  const sweep = loadSweep(file);
  if (!sweep) return 1;
  if (opts.target !== undefined && opts.target !== "local") {
    const { emitOptuna } = await import("./sweep-optuna.js");
    return emitOptuna(sweep, file, opts);
  }
  if (opts.out !== undefined || opts.storage !== undefined) {
    throw new UserError(
      "-o and --storage are for --target optuna; a local sweep records in sweeps/NAME/",
    );
  }
  const dir = join(dirname(file), sweep.name);
  ensureDir(dir);
  // One sweep of a file at a time: a second would propose and train the same trials.
  const lock = FileLock.acquire(
    join(dir, "sweep.lock"),
    (h, remote) =>
      `${dir} is in use by another \`mnistc sweep ${file}\` (pid ${h.pid}${remote ? ` on ${h.host}` : ""}, started ${h.started}); wait for it to end${remote ? `, or remove ${join(dir, "sweep.lock")} if it is gone` : ""}`,
  );
  try {
    return await runSweep(sweep, file, dir, opts, lock);
  } finally {
    lock.release();
  }
}

async function runSweep(
  sweep: Sweep,
  file: string,
  dir: string,
  opts: SweepCliOptions,
  lock: FileLock,
): Promise<number> {
  const state = openState(sweep, dir, file);
  const jobs = opts.jobs ?? availableParallelism();
  // On a terminal a live line under the log; otherwise the log lines carry the status.
  const progress = new StatusLine({ quiet: opts.quiet === true });
  const log = (line: string) => progress.log(line);
  const save = () => {
    writeFileAtomic(join(dir, "trials.json"), `${JSON.stringify(state, null, 2)}\n`);
    writeFileAtomic(join(dir, "README.md"), leaderboardPage(sweep, state));
  };
  save();
  const active: Active[] = [];
  const started = Date.now();
  const runSeconds: number[] = [];
  let stopping = false;
  // The grid is used up: nothing more to propose.
  let exhausted = false;

  const runsLeft = () => {
    const queued = state.trials.flatMap((t) => t.runs).filter((r) => r.status === "queued").length;
    const unproposed = exhausted
      ? 0
      : Math.max(0, sweep.trials - trainedTrials(state).length) * sweep.seeds.length;
    return queued + unproposed + active.length;
  };
  const count = (status: string) => state.trials.filter((t) => t.status === status).length;
  const counts = () => {
    const stopped = count("pruned") + count("failed");
    return `${count("rejected")} rejected, ${active.length} running${stopped > 0 ? `, ${stopped} stopped or failed` : ""}`;
  };
  const bestAndEta = () => {
    const best = ranked(state)[0];
    const mean = runSeconds.length
      ? runSeconds.reduce((a, b) => a + b, 0) / runSeconds.length
      : Number.NaN;
    const eta = (mean * runsLeft()) / Math.max(1, jobs);
    return `best ${best ? `${best.id} ${pct(best.objective)}` : "-"}; ETA ${formatDuration(eta)}`;
  };
  // Trials to train: the sweep's, or fewer once a grid is used up (its rejected points do not count).
  const total = () => (exhausted ? trainedTrials(state).length : sweep.trials);
  const status = () =>
    `[${state.trials.filter((t) => t.objective !== undefined).length}/${total()} done, ${counts()}] ${bestAndEta()}`;
  /** The live line: trials ended (done, stopped or failed) of the trials to train. */
  const showStatus = () => {
    const ended = count("done") + count("pruned") + count("failed");
    progress.update(ended, total(), `trials ended | ${counts()} | ${bestAndEta()}`);
  };

  /** The next run to start: a queued one, else a new trial's first (rejected proposals recorded). */
  const nextRun = (): { trial: TrialRecord; run: RunRecord } | undefined => {
    for (const trial of state.trials) {
      const run = trial.runs.find((r) => r.status === "queued");
      if (run && trial.status !== "pruned" && trial.status !== "failed") return { trial, run };
    }
    let rejectedInARow = 0;
    while (trainedTrials(state).length < sweep.trials) {
      const params = propose(sweep, state);
      if (!params) {
        exhausted = true;
        return undefined;
      }
      const id = trialId(state.proposals);
      state.proposals++;
      const specRel = join("trials", id, "spec.yaml");
      const specPath = join(dir, specRel);
      const text = `# ${sweep.name} ${id}: ${describe(params)}\n${candidateText(sweep.baseText, sweep.space, params, sweep.constraints.budget, { base: sweep.base, candidate: specPath })}`;
      writeFileAtomic(specPath, text);
      const verdict = checkCandidate(sweep, text, specPath);
      const trial: TrialRecord = {
        id,
        params,
        status: verdict.ok ? "queued" : "rejected",
        spec: specRel,
        ...(verdict.trainable !== undefined ? { trainable: verdict.trainable } : {}),
        ...(verdict.macs !== undefined ? { macs: verdict.macs } : {}),
        runs: [],
      };
      if (!verdict.ok) {
        trial.rejected = verdict.diagnostics.map(formatDiagnostic);
        state.trials.push(trial);
        save();
        log(`${id} rejected (${describe(params)}): ${trial.rejected.join("; ")}`);
        if (++rejectedInARow >= 1000) {
          log(
            "1000 candidates in a row rejected: the space barely meets the constraints; stopping",
          );
          exhausted = true;
          return undefined;
        }
        continue;
      }
      trial.runs = sweep.seeds.map((seed) => {
        const out = join("trials", id, `seed${seed}`);
        return {
          seed,
          out,
          command: trainCommand(sweep, specPath, join(dir, out), seed),
          status: "queued",
          valAccuracy: [],
          starts: 0,
        };
      });
      state.trials.push(trial);
      save();
      const run = trial.runs[0] as RunRecord;
      return { trial, run };
    }
    return undefined;
  };

  const describe = (params: Record<string, unknown>) =>
    Object.entries(params)
      .map(([k, v]) => `${k}=${showValue(v as number)}`)
      .join(", ");

  const finishTrial = (trial: TrialRecord) => {
    if (trial.runs.some((r) => r.status === "failed")) trial.status = "failed";
    else if (trial.runs.some((r) => r.status === "pruned")) trial.status = "pruned";
    else if (trial.runs.every((r) => r.status === "done")) {
      trial.status = "done";
      const ms = trial.runs.map((r) => r.metric ?? 0);
      trial.objective = ms.reduce((a, b) => a + b, 0) / ms.length;
    } else return;
    // A stopped or failed trial's other seeds are not run (and stop if running).
    for (const r of trial.runs) if (r.status === "queued") r.status = trial.status as "pruned";
    for (const a of active) {
      if (a.trial !== trial || a.stopping) continue;
      a.run.status = trial.status as "pruned";
      stop(a, "its trial ended");
    }
    log(
      `${trial.id} ${trial.status}${trial.objective !== undefined ? `: ${pct(trial.objective)}` : ""} (${trial.trainable?.toLocaleString("en-US")} parameters) ${status()}`,
    );
  };

  const stop = (a: Active, why: string) => {
    a.stopping = true;
    a.child.kill("SIGTERM");
    log(`${a.trial.id} seed ${a.run.seed}: stopped (${why})`);
  };

  /** Early stopping: judge each active run at each rung its epochs reached. */
  const watch = () => {
    for (const a of active) {
      if (a.stopping) continue;
      const m = readRunMetrics(join(dir, a.run.out));
      if (!m) continue;
      const before = a.run.valAccuracy.length;
      a.run.valAccuracy = valAccuracies(m, a.run.out);
      const rule = sweep.earlyStop;
      if (!rule) continue;
      for (const rung of rule.rungs) {
        if (rung <= before || rung > a.run.valAccuracy.length) continue;
        const others = state.trials
          .flatMap((t) => t.runs)
          .filter((r) => r !== a.run)
          .map((r) => r.valAccuracy);
        if (stopsAt(rule, sweep.metric.last, a.run.valAccuracy, others, rung)) {
          a.run.status = "pruned";
          a.run.prunedAt = rung;
          a.run.metric = runMetric(a.run.valAccuracy.slice(0, rung), sweep.metric.last);
          stop(a, `${rule.type} at epoch ${rung}: ${pct(a.run.metric)}`);
          finishTrial(a.trial);
          save();
          break;
        }
      }
    }
  };

  const launch = (trial: TrialRecord, run: RunRecord) => {
    const out = join(dir, run.out);
    // A run killed with the sweep continues from its last checkpoint; one killed before its first
    // epoch ended (no checkpoint) starts afresh.
    const again = existsSync(join(out, "checkpoint")) ? "--resume" : "--force";
    // Built again from the sweep folder as named now (the recorded command is for reading: its
    // paths are those of the run that proposed it, which may have been started from elsewhere).
    // Absolute, so the run records absolute paths (its data folder included) and resumes alike.
    const argv = [
      ...trainCommand(sweep, absolute(dir, trial.spec), absolute(out), run.seed),
      again,
    ];
    run.status = "running";
    run.starts++;
    trial.status = "running";
    save();
    const child = spawn(process.execPath, [CLI, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    const a: Active = { trial, run, child, started: Date.now(), stderr: "", stopping: false };
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr?.on("data", (d: Buffer) => {
      a.stderr = (a.stderr + d.toString("utf8")).slice(-4000);
    });
    active.push(a);
    log(
      `${trial.id} seed ${run.seed}: ${again === "--resume" ? "resuming" : "starting"} mnistc ${argv.join(" ")}`,
    );
    return new Promise<void>((resolve) => {
      let ended = false;
      const failed = (why: string) => {
        run.status = "failed";
        run.error = why;
        log(`${trial.id} seed ${run.seed} failed (${why})`);
      };
      const end = (settle: () => void) => {
        if (ended) return;
        ended = true;
        active.splice(active.indexOf(a), 1);
        if (!(a.stopping || stopping)) {
          settle();
          trial.status = "running";
          finishTrial(trial);
          save();
        }
        // Else stopped by early stopping or its trial (recorded there), or by the sweep's end.
        resolve();
      };
      // The child could not be started at all (no process: 'close' may never come).
      child.on("error", (err) => end(() => failed(`could not start: ${err.message}`)));
      child.on("close", (code, signal) =>
        end(() => {
          const seconds = (Date.now() - a.started) / 1000;
          if (code !== 0) {
            const lines = a.stderr.trim().split("\n");
            failed(`${signal ? `killed by ${signal}` : `exit ${code}`}: ${lines.at(-1) ?? ""}`);
            return;
          }
          // --json's metrics on stdout; the run folder's metrics.json if stdout was cut short.
          let m: RunMetrics | undefined;
          try {
            m = JSON.parse(stdout) as RunMetrics;
          } catch {
            m = readRunMetrics(out);
          }
          if (!m) {
            failed("it ended without metrics (no JSON on stdout, no metrics.json)");
            return;
          }
          run.valAccuracy = valAccuracies(m, run.out);
          run.metric = runMetric(run.valAccuracy, sweep.metric.last);
          run.status = "done";
          run.seconds = seconds;
          runSeconds.push(seconds);
        }),
      );
    });
  };

  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const a of active) a.child.kill("SIGTERM");
    save();
    lock.release();
    progress.stop();
    log(`sweep stopped by ${signal}; run \`mnistc sweep ${file}\` again to resume`);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const timer = setInterval(() => {
    watch();
    showStatus();
  }, 500);
  try {
    log(
      `sweep ${sweep.name}: ${sweep.trials} trials of ${sweep.seeds.length} seed(s), ${sweep.sampler.type} sampler, ${jobs} at once; records in ${dir}`,
    );
    const running = new Set<Promise<void>>();
    for (;;) {
      while (active.length < jobs) {
        const next = nextRun();
        if (!next) break;
        const p = launch(next.trial, next.run).then(() => {
          running.delete(p);
        });
        running.add(p);
      }
      showStatus();
      if (running.size === 0) break;
      await Promise.race(running);
    }
  } finally {
    clearInterval(timer);
    progress.stop();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
  save();
  const { curvePng } = await import("../runtime/report/curve.js");
  const order = ranked(state);
  const points = order.map((t) => ({
    name: t.id,
    parameters: t.trainable ?? 0,
    accuracy: 100 * (t.objective ?? 0),
    split: "validation" as const,
  }));
  const title = `${sweep.name}: parameters against validation accuracy (mean of the last ${sweep.metric.last} epochs)`;
  writeFileAtomic(join(dir, "curve.png"), await curvePng(points, { title }));
  const best = order[0];
  log(
    `sweep ${sweep.name} done in ${formatDuration((Date.now() - started) / 1000)}: ${status()}; ${join(dir, "README.md")}`,
  );
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ name: sweep.name, dir, best: best?.id ?? null, ...state }, null, 2)}\n`,
    );
  }
  return state.trials.some((t) => t.status === "failed") ? 1 : 0;
}
