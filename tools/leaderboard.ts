// `npm run docs:results`: writes docs/results/README.md, the leaderboard, from what each run folder
// under docs/results/ holds: run.json (what ran it), metrics.json (what it measured) and spec.yaml
// (the spec as trained, compiled here for parameters and MACs). No figure is typed by hand;
// `test/leaderboard.test.ts` fails when the committed page is not what this writes.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { type CurvePoint, curvePng } from "../src/runtime/report/curve.js";
import { heldOut, type RunMetrics } from "../src/runtime/train/metrics.js";

/** docs/results/<folder>/run.json. */
export interface RunRecord {
  /** The leaderboard's order: rows sort by it, then by folder. */
  rank: number;
  /** What the row is, in a few words. */
  about: string;
  command: string;
  commit: string;
  /** UTC start, `YYYY-MM-DD HH:MM`. */
  started: string;
  /** Wall-clock seconds of the whole command (`/usr/bin/time`). */
  wallSeconds: number;
  /** The run's final model when it is committed, relative to the package root. */
  model?: string;
  /**
   * What the run's page says beside its figures; a folder with notes gets its README.md written
   * by this tool, a folder without keeps its hand-written one.
   */
  notes?: string;
}

export interface Row {
  folder: string;
  run: RunRecord;
  /** What the run trained and was tested on (runs from before datasets: mnist). */
  dataset: string;
  name: string;
  trainable: number;
  macs: number;
  lastThree: number[];
  epochs: number;
  seed: number;
  backend: string;
  files: string[];
}

export const RESULTS_DIR = packagePath("docs", "results");

export function readRows(dir = RESULTS_DIR): Row[] {
  const rows: Row[] = [];
  for (const folder of readdirSync(dir).sort()) {
    const runFile = join(dir, folder, "run.json");
    if (!existsSync(runFile)) continue;
    const run = JSON.parse(readFileSync(runFile, "utf8")) as RunRecord;
    const metrics = JSON.parse(
      readFileSync(join(dir, folder, "metrics.json"), "utf8"),
    ) as RunMetrics;
    const specFile = join(dir, folder, "spec.yaml");
    const { ir, diagnostics } = compileSpec(readFileSync(specFile, "utf8"), specFile);
    if (!ir) throw new Error(`${specFile}: ${diagnostics.map((d) => d.message).join("; ")}`);
    const held = metrics.epochs.map(heldOut);
    if (held.some((h) => h.split !== "test")) {
      throw new Error(`${folder}: a leaderboard run must be tested on the test set, not --val`);
    }
    rows.push({
      folder,
      run,
      dataset: metrics.dataset?.name ?? "mnist",
      name: ir.name,
      trainable: ir.totals.trainable,
      macs: ir.totals.macs,
      lastThree: held.slice(-3).map((h) => h.accuracy),
      epochs: metrics.epochs.length,
      seed: metrics.options.seed,
      // Runs from before the ONNX backend existed record no backend: they ran the tfjs program.
      backend: metrics.backend ?? "tfjs",
      files: ["plot.png", "misclassified.png", "confusion.png"].filter((f) =>
        existsSync(join(dir, folder, f)),
      ),
    });
  }
  return rows.sort((a, b) => a.run.rank - b.run.rank || a.folder.localeCompare(b.folder));
}

const thousands = (n: number) => n.toLocaleString("en-US");
const percent = (f: number) => `${(f * 100).toFixed(2)}`;

function duration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min ${s} s`;
}

/** The README.md of a run folder that has notes. */
export function runPage(row: Row, metrics: RunMetrics): string {
  const accs = row.lastThree.map((a) => `${percent(a)}%`);
  const last = metrics.epochs.at(-1);
  const lines = [
    `# ${row.folder}: ${row.run.about}`,
    "",
    row.run.notes ?? "",
    "",
    "| | |",
    "|---|---|",
    `| spec | [\`spec.yaml\`](spec.yaml) (\`${row.name}\`, ${thousands(row.trainable)} trainable parameters, ${thousands(row.macs)} MACs) |`,
    `| command | \`${row.run.command}\` (from commit \`${row.run.commit}\`) |`,
    `| date | ${row.run.started} UTC |`,
    `| wall time | ${duration(row.run.wallSeconds)} (\`/usr/bin/time\`), 2-core machine |`,
    `| backend | ${row.backend} |`,
    `| data | ${row.dataset}: ${metrics.trainExamples} training images, ${metrics.testExamples} test images after every epoch |`,
    `| **test accuracy, last 3 epochs** | ${accs.join(", ")}; final test loss ${last?.testLoss?.toFixed(4)} |`,
    `| files | [\`metrics.json\`](metrics.json)${row.files.includes("misclassified.png") ? ", [`eval.json`](eval.json) (`mnistc eval --report` of the final model)" : ""}${row.run.model ? `, the model: \`${row.run.model}\`` : ""} |`,
    "",
    ...(row.files.includes("plot.png") ? ["![training](plot.png)", ""] : []),
    ...(row.files.includes("misclassified.png")
      ? [
          "The test digits the final model gets wrong, most confident first:",
          "",
          "![misclassified](misclassified.png)",
          "",
        ]
      : []),
    ...(row.files.includes("confusion.png") ? ["![confusion matrix](confusion.png)", ""] : []),
  ];
  return lines.join("\n");
}

/** The accuracy a run must hold in each of its last 3 epochs for a ✓, per dataset. */
export const TARGETS: Record<string, number> = { mnist: 0.994, "fashion-mnist": 0.93 };

export function leaderboard(rows: Row[]): string {
  const lines = [
    "# Results",
    "",
    "<!-- Written by `npm run docs:results` from each folder's run.json, metrics.json and spec.yaml. -->",
    "",
    "Every row is one full run: trained on all of its dataset's training images (60,000 for MNIST",
    "and Fashion-MNIST), tested on all of its test images (10,000) after every epoch, with the recipe in the folder's `spec.yaml` fixed before the",
    "run started (designs were chosen on a validation split, `mnistc train --val 10000`, never on",
    "the test set). Parameters are trainable ones (batch-norm running statistics are buffers);",
    "MACs are conv and linear multiply-accumulates per image. The folder holds the exact command,",
    "metrics.json, the training plot and, from `mnistc eval MODEL --report`, the grid of the test",
    "images the final model gets wrong and the confusion matrix.",
    "",
    "| run | dataset | spec | what | parameters | MACs | test accuracy, last 3 epochs (%) | epochs | seed | wall time | backend | files |",
    "|---|---|---|---|--:|--:|---|--:|--:|--:|---|---|",
  ];
  for (const r of rows) {
    const files = [...r.files.map((f) => `[${f.replace(".png", "")}](${r.folder}/${f})`)];
    const accs = r.lastThree.map(percent);
    const bar = TARGETS[r.dataset];
    const held = bar !== undefined && r.lastThree.every((a) => a >= bar) ? " ✓" : "";
    lines.push(
      `| [${r.folder}](${r.folder}/README.md) | ${r.dataset} | \`${r.name}\` | ${r.run.about} | ${thousands(r.trainable)} | ${thousands(r.macs)} | ${accs.join(" / ")}${held} | ${r.epochs} | ${r.seed} | ${duration(r.run.wallSeconds)} | ${r.backend} | ${files.join(" · ")} |`,
    );
  }
  lines.push(
    "",
    "✓: at least the dataset's target in each of the last 3 epochs: 99.40% on MNIST (the seed's), 93% on Fashion-MNIST. Wall time is the whole `mnistc train` command",
    "on the 2-core development machine, test passes included; runs often shared it with a second run.",
    "",
  );
  return lines.join("\n");
}

/** docs/results/tuning/runs.json: the validation runs, in the order they were tried. */
export interface TuningRecord {
  name: string;
  /** What the run tried, against which earlier run. */
  tried: string;
}

export const TUNING_DIR = join(RESULTS_DIR, "tuning");

/** A validation run as the pages show it. */
export interface TuningRun extends TuningRecord {
  trainable: number;
  /** Validation accuracy after each epoch (fractions). */
  accuracies: number[];
  finalTrainAccuracy: number;
}

/** Every validation run of runs.json, its spec compiled and its metrics read once. */
export function readTuningRuns(dir = TUNING_DIR): TuningRun[] {
  const runs = JSON.parse(readFileSync(join(dir, "runs.json"), "utf8")) as TuningRecord[];
  return runs.map((run) => {
    const specFile = join(dir, run.name, "spec.yaml");
    const { ir } = compileSpec(readFileSync(specFile, "utf8"), specFile);
    if (!ir) throw new Error(`${specFile} does not compile`);
    const metrics = JSON.parse(
      readFileSync(join(dir, run.name, "metrics.json"), "utf8"),
    ) as RunMetrics;
    const held = metrics.epochs.map(heldOut);
    if (held.some((h) => h.split !== "val")) throw new Error(`${run.name}: not a --val run`);
    return {
      ...run,
      trainable: ir.totals.trainable,
      accuracies: held.map((h) => h.accuracy),
      finalTrainAccuracy: metrics.epochs.at(-1)?.trainAccuracy ?? 0,
    };
  });
}

/** The page of validation runs: what each tried and what the validation split said. */
export function tuningPage(runs: TuningRun[]): string {
  const lines = [
    "# Design runs on the validation split",
    "",
    "<!-- Written by `npm run docs:results` from runs.json and each run's spec.yaml and metrics.json. -->",
    "",
    "How the new nets were chosen: every run below trained on the first 50,000 training images and",
    "was scored on the last 10,000 (`mnistc train SPEC --val 10000`, one thread each, two to five",
    "runs sharing the 2-core machine); none of them read the test set. The leaderboard's runs were",
    "started only after these, with their recipe fixed. As a yardstick, the seed's net (`s4`:",
    "99.40-99.45% over the last 3 epochs on the test set in its full run) scores 99.26-99.34% here,",
    "with a sixth fewer training images: about 0.1 point lower (one run, so a rough measure). Each",
    "row is one run with the seed its spec names: 1, except the runs named -s2 and -s3 (seeds 2",
    "and 3), which measure how far seeds of one design part on this split.",
    "",
    "![parameters against accuracy](curve.png)",
    "",
    "| run | parameters | what it tried | validation accuracy, last 3 epochs (%) | best | final train accuracy |",
    "|---|--:|---|---|--:|--:|",
  ];
  for (const run of runs) {
    const accs = run.accuracies;
    lines.push(
      `| [${run.name}](${run.name}/spec.yaml) | ${thousands(run.trainable)} | ${run.tried} | ${accs.slice(-3).map(percent).join(" / ")} | ${percent(Math.max(...accs))} | ${percent(run.finalTrainAccuracy)} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

/** The validation runs and the full runs, as points: parameters against last-3 accuracy. */
export function curvePoints(rows: Row[], runs: TuningRun[]): CurvePoint[] {
  const mean = (xs: number[]) => (100 * xs.reduce((a, b) => a + b, 0)) / xs.length;
  const tuning = runs.map((run) => ({
    name: run.name,
    parameters: run.trainable,
    accuracy: mean(run.accuracies.slice(-3)),
    split: "validation" as const,
  }));
  const full = rows.map((r) => ({
    name: r.folder,
    parameters: r.trainable,
    accuracy: mean(r.lastThree),
    split: "test" as const,
  }));
  return [...tuning, ...full];
}

export function readMetrics(folder: string, dir = RESULTS_DIR): RunMetrics {
  return JSON.parse(readFileSync(join(dir, folder, "metrics.json"), "utf8")) as RunMetrics;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = readRows();
  const written = [join(RESULTS_DIR, "README.md")];
  writeFileSync(written[0] as string, leaderboard(rows));
  for (const row of rows.filter((r) => r.run.notes !== undefined)) {
    const page = join(RESULTS_DIR, row.folder, "README.md");
    writeFileSync(page, runPage(row, readMetrics(row.folder)));
    written.push(page);
  }
  if (existsSync(join(TUNING_DIR, "runs.json"))) {
    const page = join(TUNING_DIR, "README.md");
    const runs = readTuningRuns();
    writeFileSync(page, tuningPage(runs));
    const curve = join(TUNING_DIR, "curve.png");
    writeFileSync(
      curve,
      await curvePng(curvePoints(rows, runs), { domain: [3000, 20000], target: 99.4 }),
    );
    written.push(page, curve);
  }
  process.stdout.write(`wrote ${written.join(", ")}\n`);
}
