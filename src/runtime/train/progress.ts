// Training progress on stderr: a cli-progress bar per epoch when stderr is a terminal; otherwise
// (logs, CI) a plain line every 10% of the epoch or every 10 s, whichever comes first.
// `quiet` silences everything; errors are not printed here.
import cliProgress from "cli-progress";

export interface BatchStatus {
  /** Batches done in this epoch. */
  done: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface ProgressOptions {
  quiet: boolean;
  stream?: NodeJS.WriteStream;
  /** Defaults to whether the stream is a terminal. */
  tty?: boolean;
  /** Plain mode: seconds between lines at most (default 10). */
  intervalSeconds?: number;
}

/** `42s`, `3m07s`, `1h05m`; `?` for an unknown time. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly interval: number;
  private bar: cliProgress.SingleBar | undefined;
  private epochLabel = "";
  private total = 0;
  private started = 0;
  private lastLine = 0;
  private lastDecile = 0;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.interval = (opts.intervalSeconds ?? 10) * 1000;
  }

  /** A log line (engine, data, resume notes, epoch summaries). */
  log(line: string): void {
    if (!this.opts.quiet) this.stream.write(`${line}\n`);
  }

  startEpoch(epoch: number, epochs: number, batches: number): void {
    this.epochLabel = `epoch ${epoch}/${epochs}`;
    this.total = batches;
    this.started = Date.now();
    this.lastLine = this.started;
    this.lastDecile = 0;
    if (this.opts.quiet || !this.tty) return;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `${this.epochLabel} [{bar}] {value}/{total} | loss {loss} acc {acc} | {ips} img/s | ETA {eta_formatted}`,
        barsize: 24,
        // Leave the terminal settings alone: an interrupted run must not leave the cursor hidden.
        hideCursor: null,
        linewrap: null,
        clearOnComplete: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(batches, 0, { loss: "-", acc: "-", ips: "-" });
  }

  update(status: BatchStatus): void {
    if (this.opts.quiet) return;
    const payload = {
      loss: status.loss.toFixed(4),
      acc: `${(status.accuracy * 100).toFixed(2)}%`,
      ips: Math.round(status.imagesPerSecond),
    };
    if (this.bar) {
      this.bar.update(status.done, payload);
      return;
    }
    const now = Date.now();
    const decile = Math.floor((status.done * 10) / this.total);
    if (status.done === this.total) return; // the epoch summary follows
    if (decile > this.lastDecile || now - this.lastLine >= this.interval) {
      this.lastDecile = decile;
      this.lastLine = now;
      const elapsed = (now - this.started) / 1000;
      const eta = (elapsed / status.done) * (this.total - status.done);
      this.stream.write(
        `${this.epochLabel}  batch ${status.done}/${this.total}  loss ${payload.loss}  acc ${payload.acc}` +
          `  ${payload.ips} img/s  ETA ${formatDuration(eta)}\n`,
      );
    }
  }

  /** Removes the bar (the caller then logs the epoch summary). */
  endEpoch(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

export interface StatusLineOptions {
  quiet: boolean;
  stream?: NodeJS.WriteStream;
  /** Defaults to whether the stream is a terminal. */
  tty?: boolean;
}

/**
 * A long job's log with its status (a sweep's trials). On a terminal, a live line (bar, counts,
 * ETA) stays under the log lines and is updated in place; otherwise (logs, CI) only the log lines
 * are written, so the caller puts the status in them.
 */
export class StatusLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private stopped = false;

  constructor(private readonly opts: StatusLineOptions) {
    this.stream = opts.stream ?? process.stderr;
    const tty = opts.tty ?? this.stream.isTTY === true;
    if (opts.quiet || !tty) return;
    this.multi = new cliProgress.MultiBar(
      {
        stream: this.stream,
        format: "[{bar}] {value}/{total} {status}",
        barsize: 20,
        // As Progress: an interrupted job must not leave the cursor hidden.
        hideCursor: null,
        linewrap: null,
        clearOnComplete: true,
        // Its own ETA (cli-progress's assumes steady steps; trials are not).
        etaBuffer: 1,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /** Whether a live line is shown (a terminal, not quiet). */
  get live(): boolean {
    return this.multi !== undefined;
  }

  /** A log line, written above the live line. */
  log(line: string): void {
    if (this.opts.quiet) return;
    if (this.multi && this.bar && !this.stopped) {
      this.multi.log(`${line}\n`);
      this.multi.update();
    } else this.stream.write(`${line}\n`);
  }

  /** Sets the live line: `done` of `total` and the status text. */
  update(done: number, total: number, status: string): void {
    if (!this.multi || this.stopped) return;
    if (!this.bar) this.bar = this.multi.create(total, done, { status });
    else {
      this.bar.setTotal(total);
      this.bar.update(done, { status });
    }
  }

  /** Removes the live line (log lines written so far stay). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.multi || !this.bar) return;
    this.multi.update();
    this.multi.stop();
    this.bar = undefined;
  }
}
