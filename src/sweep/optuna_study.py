#!/usr/bin/env python3
"""An mnistc sweep as an Optuna study (written by `mnistc sweep FILE --target optuna -o DIR`).

Run one worker per core or machine, all on one storage:

    python3 study.py                          # the storage study.json names (default: SQLite here)
    python3 study.py --storage postgresql://user@host/db --trials 50

Each trial samples the sweep's space, writes the candidate spec (the base spec with those values
and the sweep's budget), asks `mnistc check` and `mnistc params` whether the compiler accepts it
(a rejected candidate is recorded as pruned, with its diagnostic in the trial's user attribute
`rejected`, never trained), compiles it with `mnistc compile --target pytorch` and trains it with
the emitted train.py on the validation split (`--val N`: the test set is never read), once per
seed. The objective is the sweep's metric (validation accuracy, mean of the last K epochs),
averaged over the seeds. With early_stop, each epoch's value is reported and Optuna's
SuccessiveHalvingPruner (asha) or MedianPruner (median) may stop the trial at a rung.
Needs Debian's python3-optuna and python3-torch, and mnistc (study.json's `mnistc`, or $MNISTC).
"""

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import time

import optuna
import sqlalchemy.exc
import yaml
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "study.json")) as f:
    CONFIG = json.load(f)


def mnistc(*args):
    command = shlex.split(os.environ.get("MNISTC", "")) or CONFIG["mnistc"]
    return subprocess.run([*command, *args], capture_output=True, text=True)


def suggest(trial, dim):
    name, kind = dim["path"], dim["kind"]
    if kind == "choice":
        return trial.suggest_categorical(name, dim["values"])
    if kind == "int":
        return trial.suggest_int(name, dim["low"], dim["high"])
    return trial.suggest_float(name, dim["low"], dim["high"], log=kind == "loguniform")


def candidate(params):
    """The base spec with each value set at its path (PyYAML: comments and layout are not kept)."""
    spec = yaml.safe_load(CONFIG["baseText"])
    for dim in CONFIG["space"]:
        node = spec
        for key in dim["at"][:-1]:
            node = node[key]
        node[dim["at"][-1]] = params[dim["path"]]
    if CONFIG.get("budget") is not None:
        spec["budget"] = CONFIG["budget"]
    return yaml.safe_dump(spec, sort_keys=False)


def reject(trial, why):
    trial.set_user_attr("rejected", why)
    print(f"trial {trial.number} rejected: {why}", file=sys.stderr, flush=True)
    raise optuna.TrialPruned(why)


def metric(accuracies):
    tail = accuracies[-CONFIG["metric"]["last"] :]
    return sum(tail) / len(tail)


def train(trial, folder, seed, others, data):
    """One seed's run of train.py; with a pruner, each epoch's value is reported as it comes."""
    out = os.path.join(folder, f"seed{seed}")
    command = [sys.executable, os.path.join(folder, "train.py"), "--val", str(CONFIG["val"])]
    command += ["--seed", str(seed), "--out", out, "--quiet"]
    if CONFIG.get("trainLimit") is not None:
        command += ["--train-limit", str(CONFIG["trainLimit"])]
    if CONFIG.get("epochs") is not None:
        command += ["--epochs", str(CONFIG["epochs"])]
    if data:
        command += ["--data", data]
    trial.set_user_attr(f"command_seed{seed}", shlex.join(command))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    metrics_file = os.path.join(out, "metrics.json")
    reported = 0
    while True:
        done = child.poll() is not None
        accuracies = []
        if os.path.exists(metrics_file):
            try:
                with open(metrics_file) as f:
                    record = json.load(f)
                if record["testExamples"] != 0:
                    raise RuntimeError(f"{metrics_file}: the run read the test set")
                accuracies = [e["valAccuracy"] for e in record["epochs"]]
            except (json.JSONDecodeError, KeyError):
                accuracies = []  # written while we read: next time
        # Seeds in turn: the step is the epoch counted over the seeds run so far.
        while CONFIG.get("earlyStop") and reported < len(accuracies):
            reported += 1
            trial.report(metric(accuracies[:reported]), others + reported)
            if reported in CONFIG["earlyStop"]["rungs"] and trial.should_prune():
                child.kill()
                child.wait()
                raise optuna.TrialPruned(f"stopped at epoch {reported}")
        if done:
            break
        time.sleep(0.5)
    if child.returncode != 0:
        raise RuntimeError(f"train.py failed (exit {child.returncode}): {child.stderr.read()[-2000:]}")
    return accuracies


def objective(trial, args):
    params = {dim["path"]: suggest(trial, dim) for dim in CONFIG["space"]}
    folder = os.path.join(args.runs, f"trial{trial.number:04d}")
    os.makedirs(folder, exist_ok=True)
    spec = os.path.join(folder, "spec.yaml")
    with open(spec, "w") as f:
        f.write(candidate(params))
    trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
    checked = mnistc("check", spec)
    if checked.returncode != 0:
        reject(trial, checked.stderr.strip().splitlines()[0] if checked.stderr.strip() else "check failed")
    counted = json.loads(mnistc("params", spec, "--json").stdout)
    counted = counted[0] if isinstance(counted, list) else counted
    trainable, macs = counted["totals"]["trainable"], counted["totals"]["macs"]
    trial.set_user_attr("trainable", trainable)
    trial.set_user_attr("macs", macs)
    if CONFIG.get("maxMacs") is not None and macs > CONFIG["maxMacs"]:
        reject(trial, f"{macs} MACs, over the sweep's max_macs of {CONFIG['maxMacs']}")
    compiled = mnistc("compile", spec, "--target", "pytorch", "-o", folder)
    if compiled.returncode != 0:
        raise RuntimeError(f"mnistc compile failed: {compiled.stderr}")
    values, epochs = [], 0
    for seed in CONFIG["seeds"]:
        accuracies = train(trial, folder, seed, epochs, args.data)
        epochs += len(accuracies)
        values.append(metric(accuracies))
        trial.set_user_attr(f"val_accuracy_seed{seed}", accuracies)
    return sum(values) / len(values)


def main():
    parser = argparse.ArgumentParser(description=f"Optuna worker of the mnistc sweep {CONFIG['name']}")
    parser.add_argument("--storage", default=CONFIG["storage"], help="RDB URL shared by the workers")
    parser.add_argument(
        "--trials", type=int, default=CONFIG["trials"], help="finished trials the study stops at"
    )
    parser.add_argument("--runs", default=os.path.join(HERE, "runs"), help="folder for trial runs")
    parser.add_argument("--data", default=CONFIG.get("data"), help="the dataset's folder")
    args = parser.parse_args()
    kind = CONFIG["sampler"]["type"]
    # Each worker its own stream (workers with one seed would propose the same points).
    seed = CONFIG["sampler"]["seed"] * 1000003 + os.getpid()
    if kind == "grid":
        space = {d["path"]: d["values"] for d in CONFIG["space"]}
        sampler = optuna.samplers.GridSampler(space, seed=seed)
    elif kind == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=CONFIG["sampler"]["startup"])
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    early = CONFIG.get("earlyStop")
    if early is None:
        pruner = optuna.pruners.NopPruner()
    elif early["type"] == "asha":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=early["rungs"][0], reduction_factor=early["eta"]
        )
    else:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=early["minRuns"])
    # Workers started together race to create the storage's tables (one gets an IntegrityError
    # from alembic's version table): the loser waits and opens what the winner made.
    for attempt in range(10):
        try:
            study = optuna.create_study(
                study_name=CONFIG["name"],
                storage=args.storage,
                sampler=sampler,
                pruner=pruner,
                direction="maximize",
                load_if_exists=True,
            )
            break
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == 9:
                raise
            time.sleep(0.5 + random.random())
    # The study ends when `trials` trials finished, counted over every worker.
    done = MaxTrialsCallback(args.trials, states=(TrialState.COMPLETE,))
    study.optimize(lambda t: objective(t, args), callbacks=[done], catch=(RuntimeError,))


if __name__ == "__main__":
    main()
