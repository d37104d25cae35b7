// A training run's output folder (`--out`). `RunFolder.open` refuses a folder that holds a run
// unless --resume continues it or --force replaces it, then locks it: a second run into the same
// folder refuses instead of mixing its checkpoint with the first's. The lock (FileLock, also a
// sweep's) is a file holding its process's pid, host and start time, created whole (written aside,
// then linked into place); a lock whose process is gone (a killed run) is stale and taken over. Nothing of an old run changes
// until `ready()`: a run with --force that fails before it can start (a mistyped --data, a bad
// --val or --teacher) leaves the old run as it was. Folders staged with `stage()` (the emitted
// program) replace theirs at `ready()` too.
import {
  linkSync,
  lstatSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
} from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, sep } from "node:path";
import { UserError } from "../../errors.js";
import {
  ensureDir,
  errnoText,
  realPathOf,
  tempPathBeside,
  writeNewFileDurable,
} from "../../util/files.js";
import { removeStaleTemps } from "./checkpoint.js";

/** What in `out` shows that a run already lives there. */
export const RUN_FILES = ["checkpoint", "checkpoint.old", "metrics.json", "model.onnx"];
/** What `--force` removes of the old run when the new one starts (besides staged folders). */
const REPLACED = [...RUN_FILES, "plot.png"];
export const LOCK_FILE = "train.lock";
/** Everything a run writes in `out`, each replacing what stands there. */
const RUN_OUTPUTS = [...REPLACED, "program", LOCK_FILE];

/** A file or folder a run reads: none may be one of the run's outputs or inside one. */
export interface RunInput {
  /** What it is to the run, for the message: "the spec", "--data". */
  what: string;
  path: string;
}

/** The files a spec's recipe reads (its teachers). */
export function specInputs(spec: { train: { distill?: { teachers: string[] } } }): RunInput[] {
  return (spec.train.distill?.teachers ?? []).map((path) => ({
    what: "a teacher of the spec",
    path,
  }));
}

/** Refuses a run whose inputs (by real path) are among its outputs in `out`, or inside one. */
export function checkInputsOutside(out: string, inputs: RunInput[]): void {
  const outputs = RUN_OUTPUTS.map((f) => realPathOf(join(out, f)));
  for (const { what, path } of inputs) {
    const real = realPathOf(path);
    const hit = outputs.find((o) => real === o || real.startsWith(o + sep));
    if (hit) {
      throw new UserError(
        `${path}: ${what} is ${real === hit ? "" : "inside "}${join(out, basename(hit))}, which this run writes; move it or choose another --out`,
      );
    }
  }
}

/**
 * Refuses to start a fresh run in a folder that already holds one (its checkpoint, metrics or
 * model would be replaced) unless `--resume` continues it or `--force` replaces it. Changes nothing.
 */
export function checkOutFolder(out: string, opts: { resume?: boolean; force?: boolean }): void {
  if (opts.resume && opts.force) throw new UserError("--resume and --force cannot be combined");
  if (opts.resume || opts.force) return;
  const found = RUN_FILES.find((f) => exists(join(out, f)));
  if (found) {
    throw new UserError(
      `${out} already holds a run (${found}); pass --resume to continue it or --force to start afresh and replace it`,
    );
  }
}

/** Who holds a lock file. */
export interface Holder {
  pid: number;
  host: string;
  started: string;
}

/**
 * A lock file holding its process's pid, host and start time, created whole; a lock whose process
 * is gone (killed) is stale and taken over, a live one refused with `inUse`'s message. Shared by
 * run folders (`train.lock`) and sweeps (`sweep.lock`).
 */
export class FileLock {
  private released = false;

  private constructor(
    readonly path: string,
    private readonly holder: Holder,
  ) {}

  static acquire(path: string, inUse: (holder: Holder, remote: boolean) => string): FileLock {
    const holder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
    lock(path, holder, inUse);
    return new FileLock(path, holder);
  }

  /** Removes the lock file, unless another process took it over meanwhile. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (sameHolder(readHolder(this.path), this.holder)) unlinkSync(this.path);
  }
}

export class RunFolder {
  private readonly staged = new Map<string, string>();
  private isReady = false;
  private released = false;

  private constructor(
    readonly out: string,
    private readonly force: boolean,
    private readonly created: boolean,
    private readonly lock: FileLock,
  ) {}

  /**
   * Checks `out` (checkOutFolder) and that no input of the run (`inputs`, --data, --teacher) is
   * one of its outputs, then creates `out` if missing and locks it.
   */
  static open(
    out: string,
    opts: { resume?: boolean; force?: boolean; data?: string; teacher?: string[] },
    inputs: RunInput[] = [],
  ): RunFolder {
    checkOutFolder(out, opts);
    checkInputsOutside(out, [
      ...inputs,
      ...(opts.data !== undefined ? [{ what: "--data", path: opts.data }] : []),
      ...(opts.teacher ?? []).map((path) => ({ what: "--teacher", path })),
    ]);
    const created = !exists(out);
    ensureDir(out);
    let held: FileLock;
    try {
      held = FileLock.acquire(
        join(out, LOCK_FILE),
        (found, remote) =>
          `${dirname(join(out, LOCK_FILE))} is in use by another training run (pid ${found.pid}${remote ? ` on ${found.host}` : ""}, started ${found.started}); wait for it to end or choose another --out${remote ? `, or remove ${join(out, LOCK_FILE)} if that run is gone` : ""}`,
      );
    } catch (err) {
      if (created) removeIfEmpty(out);
      throw err;
    }
    return new RunFolder(out, opts.force === true, created, held);
  }

  /** An empty folder that becomes `<out>/<name>` at `ready()` (a killed run's are removed). */
  stage(name: string): string {
    removeStaleTemps(join(this.out, name));
    const dir = join(this.out, `.${name}.tmp-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    this.staged.set(name, dir);
    return dir;
  }

  /** The new run is ready to start: with --force the old run goes; staged folders move in. */
  ready(): void {
    if (this.isReady) return;
    this.isReady = true;
    if (this.force) {
      for (const f of REPLACED) rmSync(join(this.out, f), { recursive: true, force: true });
    }
    for (const [name, dir] of this.staged) replaceDir(dir, join(this.out, name));
    this.staged.clear();
  }

  /** Unlocks; what was staged and never moved in is removed (and `out`, if created and empty). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const dir of this.staged.values()) rmSync(dir, { recursive: true, force: true });
    this.lock.release();
    if (this.created) removeIfEmpty(this.out);
  }
}

/** Whether anything stands at `path` (a dangling symlink included). */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (or gone): left as it is.
  }
}

/** `from` replaces folder `to` (moved aside, then removed). */
function replaceDir(from: string, to: string): void {
  const aside = tempPathBeside(to);
  let moved = false;
  try {
    try {
      renameSync(to, aside);
      moved = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    renameSync(from, to);
  } catch (err) {
    if (moved) renameSync(aside, to);
    throw new UserError(`${to}: cannot replace it (${errnoText(err)})`);
  }
  if (moved) rmSync(aside, { recursive: true, force: true });
}

function readHolder(path: string): Holder | undefined | "unreadable" {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return "unreadable";
  }
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (
      Number.isSafeInteger(h.pid) &&
      typeof h.host === "string" &&
      typeof h.started === "string"
    ) {
      return h as Holder;
    }
  } catch {
    // Below.
  }
  return "unreadable";
}

const sameHolder = (a: ReturnType<typeof readHolder>, b: Holder) =>
  typeof a === "object" && a.pid === b.pid && a.host === b.host && a.started === b.started;

/** Whether the run holding a lock may still be going (a process on another host: assumed so). */
function holderLives(h: Holder): boolean {
  if (h.host !== hostname() || h.pid === process.pid) return true;
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  return !isZombie(h.pid);
}

/**
 * A killed process that nobody has reaped yet (a zombie, `Z` in /proc/PID/stat) still answers
 * kill(pid, 0) but holds nothing; where init is slow to reap (containers), its lock would look
 * held for good. Off Linux (no /proc) a process is taken as alive.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ...": the command may hold spaces and parentheses; the state follows the last ")".
    const state = stat.slice(stat.lastIndexOf(")") + 1).trim()[0];
    return state === "Z" || state === "X";
  } catch {
    return false;
  }
}

/** Creates the lock file holding `holder`; takes over a stale one; refuses a live one. */
function lock(
  path: string,
  holder: Holder,
  inUse: (holder: Holder, remote: boolean) => string,
): void {
  const text = `${JSON.stringify(holder)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Written aside and linked into place: a reader never sees a half-written lock.
    const tmp = tempPathBeside(path);
    try {
      writeNewFileDurable(tmp, text);
      linkSync(tmp, path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new UserError(`${path}: cannot lock it (${errnoText(err)})`);
      }
    } finally {
      rmSync(tmp, { force: true });
    }
    const found = readHolder(path);
    if (found === undefined) continue; // released meanwhile
    if (found !== "unreadable" && holderLives(found)) {
      throw new UserError(inUse(found, found.host !== hostname()));
    }
    breakStale(path, found);
  }
  throw new UserError(`${path}: cannot lock it (other processes keep taking it)`);
}

/** Removes the stale lock that held `seen`, unless another run took the folder meanwhile. */
function breakStale(path: string, seen: Holder | "unreadable"): void {
  const moved = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, moved);
  } catch {
    return; // another run moved it first: try again
  }
  const now = readHolder(moved);
  const same =
    seen === "unreadable" ? now === "unreadable" : typeof now === "object" && sameHolder(now, seen);
  if (!same) {
    // A live run's fresh lock was moved: put it back (unless yet another run holds it now).
    try {
      linkSync(moved, path);
    } catch {
      // Then that other run holds the folder.
    }
  }
  rmSync(moved, { force: true });
}
