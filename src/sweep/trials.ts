// A sweep's record and the decisions made from it, pure: the next proposal (grid, random or TPE),
// whether a candidate passes the compiler and the constraints, the metric of a run, whether a run
// stops at a rung (ASHA or median), and the leaderboard page.
import { error } from "../compiler/codes.js";
import type { Diagnostic } from "../compiler/diagnostics.js";
import { checkSpec } from "../compiler/index.js";
import type { EarlyStop, Sweep } from "./file.js";
import {
  dimValues,
  gridPoint,
  gridSize,
  type Params,
  proposalRng,
  randomPoint,
  showValue,
} from "./space.js";
import { type Observation, tpePoint } from "./tpe.js";

export type RunStatus = "queued" | "running" | "done" | "pruned" | "failed";
export type TrialStatus = "rejected" | RunStatus;

/** One `mnistc train` child: a trial's candidate with one seed. */
export interface RunRecord {
  seed: number;
  /** Its output folder, relative to the sweep's. */
  out: string;
  /** The command as run (argv after `mnistc`). */
  command: string[];
  status: RunStatus;
  /** Validation accuracy after each epoch so far. */
  valAccuracy: number[];
  /** The sweep's metric of this run (when done, or at the rung that stopped it). */
  metric?: number;
  /** Epoch at which early stopping ended it. */
  prunedAt?: number;
  /** How many times it was started (a restart after a kill resumes its checkpoint). */
  starts: number;
  seconds?: number;
  error?: string;
}

export interface TrialRecord {
  id: string;
  params: Params;
  status: TrialStatus;
  /** The candidate spec, relative to the sweep's folder. */
  spec: string;
  trainable?: number;
  macs?: number;
  /** Why the compiler or the constraints rejected it (formatted diagnostics). */
  rejected?: string[];
  runs: RunRecord[];
  /** Mean of its runs' metrics, once every run is done. */
  objective?: number;
}

export interface SweepState {
  version: 1;
  /** The sweep file as given. */
  sweep: string;
  /** What makes two sweeps the same (the file minus `trials`, and the base spec's text). */
  fingerprint: string;
  /** Proposals made so far, rejected ones included (the next one's index). */
  proposals: number;
  trials: TrialRecord[];
}

export const trialId = (index: number): string => `t${String(index + 1).padStart(3, "0")}`;

export const trainedTrials = (state: SweepState): TrialRecord[] =>
  state.trials.filter((t) => t.status !== "rejected");

/** The metric over a run's epochs so far: the mean of the last `last` (fewer if fewer ran). */
export function runMetric(valAccuracy: number[], last: number): number | undefined {
  if (valAccuracy.length === 0) return undefined;
  const tail = valAccuracy.slice(-last);
  return tail.reduce((s, a) => s + a, 0) / tail.length;
}

/**
 * The next candidate's parameters, or undefined when the space is used up (a grid). TPE learns
 * from the trials that finished (a stopped one counts below every finished one).
 */
export function propose(sweep: Sweep, state: SweepState): Params | undefined {
  const index = state.proposals;
  const { type, seed, startup } = sweep.sampler;
  if (type === "grid") {
    return index < gridSize(sweep.space) ? gridPoint(sweep.space, index, dimValues) : undefined;
  }
  const rng = proposalRng(seed, index);
  if (type === "random") return randomPoint(sweep.space, rng);
  const history: Observation[] = [];
  for (const t of state.trials) {
    if (t.objective !== undefined) history.push({ params: t.params, value: t.objective });
    else if (t.status === "pruned" || t.status === "failed") {
      const m = Math.min(...t.runs.map((r) => r.metric ?? 0));
      history.push({ params: t.params, value: m - 1 });
    }
  }
  if (history.filter((o) => o.value >= 0).length < startup) return randomPoint(sweep.space, rng);
  return tpePoint(sweep.space, history, rng);
}

export interface CandidateVerdict {
  ok: boolean;
  trainable?: number;
  macs?: number;
  diagnostics: Diagnostic[];
}

/**
 * What the compiler says of a candidate spec (written by candidateText, with the sweep's budget as
 * its own), and the sweep's MAC limit.
 */
export function checkCandidate(sweep: Sweep, text: string, file: string): CandidateVerdict {
  const { ir, diagnostics } = checkSpec(text, file);
  const errors = diagnostics.filter((d) => d.severity === "error");
  if (!ir) return { ok: false, diagnostics: errors };
  const { trainable, macs } = ir.totals;
  // checkSpec has judged the budget: E0301.
  const found = [...errors];
  const maxMacs = sweep.constraints.maxMacs;
  if (maxMacs !== undefined && macs > maxMacs) {
    found.push(
      error(
        "E1005",
        `${macs.toLocaleString("en-US")} MACs, over the sweep's max_macs of ${maxMacs.toLocaleString("en-US")}`,
        { file, line: 1, col: 1, endLine: 1, endCol: 1 },
      ),
    );
  }
  return { ok: found.length === 0, trainable, macs, diagnostics: found };
}

/**
 * Whether a run stops at `rung` (its epochs so far reach it). ASHA, in its stopping form (as
 * Optuna's SuccessiveHalvingPruner): it goes on only if among the best max(1, ⌊n/eta⌋) of the n
 * runs judged at this rung so far, itself included. Median (Optuna's MedianPruner): it stops if
 * below the median of the other runs at this rung, once at least `minRuns` of them reached it.
 */
export function stopsAt(
  rule: EarlyStop,
  last: number,
  run: number[],
  others: number[][],
  rung: number,
): boolean {
  const at = (accs: number[]) => runMetric(accs.slice(0, rung), last) as number;
  const value = at(run);
  const peers = others.filter((o) => o.length >= rung).map(at);
  if (rule.type === "asha") {
    const all = [...peers, value].sort((a, b) => b - a);
    const k = Math.max(1, Math.floor(all.length / rule.eta));
    return value < (all[k - 1] as number);
  }
  if (peers.length < rule.minRuns) return false;
  const sorted = [...peers].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median =
    sorted.length % 2 === 1
      ? (sorted[Math.floor(mid)] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return value < median;
}

const percent = (f: number | undefined) => (f === undefined ? "" : (100 * f).toFixed(2));
const thousands = (n: number | undefined) => (n === undefined ? "" : n.toLocaleString("en-US"));

/** The trials that finished, best first (ties: fewer parameters, then earlier). */
export function ranked(state: SweepState): TrialRecord[] {
  return state.trials
    .filter((t) => t.objective !== undefined)
    .sort(
      (a, b) =>
        (b.objective as number) - (a.objective as number) ||
        (a.trainable ?? 0) - (b.trainable ?? 0) ||
        a.id.localeCompare(b.id),
    );
}

/** sweeps/NAME/README.md: the leaderboard, then the stopped, failed and rejected trials. */
export function leaderboardPage(sweep: Sweep, state: SweepState): string {
  const dims = sweep.space.map((d) => d.path);
  const metric = `val accuracy, mean of the last ${sweep.metric.last} epoch${sweep.metric.last === 1 ? "" : "s"}`;
  const lines = [
    `# Sweep ${sweep.name}`,
    "",
    `<!-- Written by \`mnistc sweep ${state.sweep}\` from trials.json. -->`,
    "",
    `Base spec \`${sweep.base}\`; ${sweep.sampler.type} sampler; seeds ${sweep.seeds.join(", ")} per trial; scored on the last ${sweep.val} training images (\`mnistc train --val ${sweep.val}\`): the test set is never read.`,
    "",
    "![parameters against accuracy](curve.png)",
    "",
    `| rank | trial | ${dims.map((d) => `\`${d}\``).join(" | ")} | parameters | MACs | ${metric} (%) | per seed (%) |`,
    `|--:|---|${dims.map(() => "---|").join("")}--:|--:|--:|---|`,
  ];
  ranked(state).forEach((t, i) => {
    lines.push(
      `| ${i + 1} | [${t.id}](${t.spec}) | ${dims.map((d) => showValue(t.params[d] ?? "")).join(" | ")} | ${thousands(t.trainable)} | ${thousands(t.macs)} | ${percent(t.objective)} | ${t.runs.map((r) => percent(r.metric)).join(" / ")} |`,
    );
  });
  const stopped = state.trials.filter((t) => t.status === "pruned" || t.status === "failed");
  if (stopped.length > 0) {
    lines.push("", "## Stopped early or failed", "");
    for (const t of stopped) {
      const why = t.runs
        .map((r) =>
          r.status === "pruned"
            ? `seed ${r.seed} stopped after epoch ${r.prunedAt} at ${percent(r.metric)}%`
            : r.status === "failed"
              ? `seed ${r.seed} failed: ${r.error ?? "?"}`
              : `seed ${r.seed} ${r.status}`,
        )
        .join("; ");
      lines.push(`- [${t.id}](${t.spec}) (${thousands(t.trainable)} parameters): ${why}`);
    }
  }
  const rejected = state.trials.filter((t) => t.status === "rejected");
  if (rejected.length > 0) {
    lines.push("", `## Rejected by the compiler (${rejected.length}, never trained)`, "");
    for (const t of rejected) {
      const params = dims.map((d) => `${d}=${showValue(t.params[d] ?? "")}`).join(", ");
      const why = (t.rejected ?? []).map((d) => d.replace(/\n/g, " / ")).join("; ");
      lines.push(`- [${t.id}](${t.spec}) (${params}): ${why}`);
    }
  }
  lines.push("");
  return lines.join("\n");
}
