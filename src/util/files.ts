// Reading inputs and writing outputs safely, for every command and the runtime:
// - `readRegularFile` reads only regular files, up to a size limit checked before reading. A FIFO,
//   a device (/dev/zero), a socket or a folder is refused at once: the file is opened with
//   O_NONBLOCK and checked with fstat, so opening a FIFO with no writer never blocks.
// - `writeFileAtomic` writes a temporary file beside the target (created exclusively, so it never
//   follows a planted symlink), fsyncs it and renames it over the target. It refuses to replace
//   anything that is not a regular file: a symlink, a FIFO, a device or a folder at the target
//   path is left alone and reported.
// - Within one command (`asCommand`, which src/cli.ts opens around each), every file read is an
//   input, by real path: a write that would replace one is refused (`export s.yaml --weights ...
//   -o s.yaml` would otherwise turn the spec into ONNX bytes).
// Every failure is a one-line `UserError` naming the path.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { cannotRead, errnoText, UserError } from "../errors.js";

export { errnoText };

/** What a non-regular file is, in words. */
export function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return "a folder";
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

export interface ReadOptions {
  /** Largest size accepted, in bytes; checked before reading. */
  maxBytes: number;
  /** What the file should be, for messages: "an ONNX file", "a spec file", "an image". */
  what: string;
  /** Refuse a symbolic link too (files named inside an artifact, which must stay in its folder). */
  noFollow?: boolean;
}

/** Binary sizes for messages: `1 MiB`, `512 KiB`, `300 bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** The files the running command has read: real path -> what it was read as. */
const commandInputs = new AsyncLocalStorage<Map<string, string>>();

/** Runs `action` as one command: no file it reads may be replaced by what it writes. */
export function asCommand<T>(action: () => Promise<T>): Promise<T> {
  return commandInputs.run(new Map(), action);
}

/** `path` with every symlink resolved; for a missing file, its folder's real path and its name. */
export function realPathOf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return resolve(path);
    }
  }
}

/** Refuses when the running command has read `path` (by real path) as one of its inputs. */
export function checkNotAnInput(path: string): void {
  const inputs = commandInputs.getStore();
  if (!inputs || inputs.size === 0) return;
  const what = inputs.get(realPathOf(path));
  if (what !== undefined) {
    throw new UserError(
      `${path}: this command read it as ${what}; refusing to overwrite one of its own inputs (choose another output path)`,
    );
  }
}

/** The bytes of the regular file `path`, refused when it is anything else or too large. */
export function readRegularFile(path: string, options: ReadOptions): Buffer {
  let fd: number;
  try {
    const noFollow = options.noFollow ? constants.O_NOFOLLOW : 0;
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | noFollow);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" && options.noFollow) {
      throw new UserError(
        `${path}: is a symbolic link; refused (it could point outside its folder)`,
      );
    }
    if (code === "ENXIO")
      throw new UserError(`${path}: is a socket or device, not ${options.what}`);
    throw cannotRead(path, err, options.what);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new UserError(`${path}: is a directory, not ${options.what}`);
    if (!stats.isFile()) {
      throw new UserError(`${path}: is ${fileKind(stats)}, not ${options.what}; refused`);
    }
    if (stats.size > options.maxBytes) {
      throw new UserError(
        `${path}: ${stats.size} bytes is more than the ${formatBytes(options.maxBytes)} accepted for ${options.what}`,
      );
    }
    const size = stats.size;
    // One byte more than stat said, so a file that grows while being read is noticed.
    const buffer = Buffer.allocUnsafe(size + 1);
    let off = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, off, buffer.length - off, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") continue;
        throw new UserError(`${path}: cannot read (${errnoText(err)})`);
      }
      if (n === 0) break;
      off += n;
      if (off > size) {
        throw new UserError(`${path}: the file grew while it was read; refused`);
      }
    }
    commandInputs.getStore()?.set(realPathOf(path), options.what);
    return buffer.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Reads standard input to its end, up to `maxBytes` (`check -`). */
export async function readStdin(maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const bytes = chunk as Buffer;
    size += bytes.length;
    if (size > maxBytes) {
      process.stdin.destroy();
      throw new UserError(
        `standard input: more than the ${formatBytes(maxBytes)} accepted for ${what}`,
      );
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size);
}

/** What stands at `path` without following a symlink there, or undefined when nothing does. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(`${path}: cannot write (${errnoText(err)})`);
  }
}

/**
 * Refuses when something other than a regular file stands at `path` (a symlink, a FIFO, a
 * device, a folder): an output never replaces it. Returns the existing file's stats, if any.
 */
export function checkReplaceable(path: string): Stats | undefined {
  const stats = lstatOrUndefined(path);
  if (stats && !stats.isFile()) {
    throw new UserError(
      `${path}: is ${fileKind(stats)}; refusing to replace it with a file (remove it or choose another path)`,
    );
  }
  return stats;
}

/**
 * Makes sure folder `dir` exists (creating it and its parents), as a one-line error when it cannot
 * be: a file in the way, a read-only or virtual file system, no permission. Done one level at a
 * time: Node's `mkdirSync(..., { recursive: true })` spins forever on a path under /proc.
 */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let current = resolve(dir);
  for (;;) {
    let stats: Stats | undefined;
    try {
      stats = statSync(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new UserError(`${dir}: cannot create the folder (${errnoText(err)})`);
      }
    }
    if (stats) {
      if (!stats.isDirectory()) {
        throw new UserError(`${dir}: cannot create the folder (${current} is ${fileKind(stats)})`);
      }
      break;
    }
    missing.push(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && statSync(path).isDirectory()) continue;
      // ENOENT for a parent that exists: a virtual file system (/proc, /sys) that has no folders.
      const why = code === "ENOENT" ? "the file system does not allow it" : errnoText(err);
      throw new UserError(`${dir}: cannot create the folder (${why})`);
    }
  }
}

/** Writes `data` to the new file `path` (which must not exist) and fsyncs it. */
export function writeNewFileDurable(path: string, data: string | Uint8Array, mode = 0o644): void {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  try {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a folder so that a rename in it is durable (where the platform allows it). */
export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  }
}

/** A fresh temporary name beside `path`: `.<name>.tmp-<pid>-<random>`. */
export function tempPathBeside(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
}

export interface WriteOptions {
  /** Create the parent folder when missing (default true). */
  mkdir?: boolean;
}

/**
 * Atomically writes the regular file `path`: a reader sees the old contents or the new, never a
 * mix, and an interrupted write leaves the old file. Refuses to replace a symlink, FIFO, device or
 * folder. A replaced file keeps its permission bits.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): void {
  const dir = dirname(path);
  checkNotAnInput(path);
  if (options.mkdir !== false) ensureDir(dir);
  const existing = checkReplaceable(path);
  const tmp = tempPathBeside(path);
  try {
    writeNewFileDurable(tmp, data, existing ? existing.mode & 0o7777 : 0o644);
    // Checked again just before the rename: something planted meanwhile is still not replaced.
    checkReplaceable(path);
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created, or already renamed.
    }
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: cannot write (${errnoText(err)})`);
  }
  fsyncDir(dir);
}
