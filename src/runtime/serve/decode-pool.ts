// Request bodies are decoded (PNG/JPEG/PGM, JSON parse, the model's preprocessing) in worker
// threads, never on the server's event loop: a 2048x2048 PNG takes over 100 ms to decode, and a
// hostile one is stopped by the decoder's limits, but either way `/healthz` and every other
// request keep being answered meanwhile.
//
// Bounded everywhere: at most `maxQueue` bodies wait (more is a 503 with Retry-After), and a body
// whose decoding takes longer than `timeoutMs` is a 503 too; its worker is ended and replaced.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { DecodeReply, DecodeRequest, DecodeWorkerData } from "./decode-worker.js";
import { busy, HttpError } from "./http-error.js";
import { DIGIT_PROFILE, type ServeProfile } from "./predict.js";

export interface DecodePoolOptions {
  /** The model's input and preprocessing (default: an MNIST digit model's). */
  profile?: ServeProfile;
  /** Worker threads (default: one per core but one, at least one). */
  size?: number;
  /** Bodies waiting for a worker before new ones are refused with 503 (default 64). */
  maxQueue?: number;
  /** Longest time one body may take (default 10 s). */
  timeoutMs?: number;
  /** Where a worker's unexpected failure is logged. */
  log?: (line: string) => void;
}

interface Job {
  id: number;
  contentType: string | undefined;
  body: Uint8Array;
  resolve: (pixels: Uint8Array) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class DecodePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly workerData: DecodeWorkerData;

  constructor(options: DecodePoolOptions = {}) {
    const size = options.size ?? Math.max(1, availableParallelism() - 1);
    this.maxQueue = options.maxQueue ?? 64;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.log = options.log ?? (() => {});
    this.workerData = { profile: options.profile ?? DIGIT_PROFILE };
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL("./decode-worker.js", import.meta.url), {
      workerData: this.workerData,
    });
    const slot: Slot = { worker, job: undefined, timer: undefined };
    worker.unref();
    worker.on("message", (reply: DecodeReply) => this.finish(slot, reply));
    worker.on("error", (err) => this.fail(slot, err));
    worker.on("exit", (code) => {
      if (!this.closed && this.slots.includes(slot)) {
        this.fail(slot, new Error(`decode worker exited with code ${code}`));
      }
    });
    return slot;
  }

  /** The C·H·W bytes the model is to see for one request body; HttpError for a bad body. */
  decode(contentType: string | undefined, body: Uint8Array): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(busy("the server is shutting down"));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(busy("the server is busy decoding other images; retry shortly"));
    }
    return new Promise((resolve, reject) => {
      // A copy of its own: a small Buffer is a view into Node's shared pool, which cannot move.
      this.queue.push({
        id: this.nextId++,
        contentType,
        body: new Uint8Array(body),
        resolve,
        reject,
      });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || this.queue.length === 0) continue;
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.timer = setTimeout(() => this.timeout(slot), this.timeoutMs);
      const message: DecodeRequest = { id: job.id, contentType: job.contentType, body: job.body };
      slot.worker.postMessage(message, [job.body.buffer as ArrayBuffer]);
    }
  }

  private settle(slot: Slot): Job | undefined {
    const job = slot.job;
    clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    return job;
  }

  private finish(slot: Slot, reply: DecodeReply): void {
    const job = this.settle(slot);
    if (job && job.id === reply.id) {
      if ("pixels" in reply) job.resolve(reply.pixels);
      else {
        if (reply.detail) this.log(`internal error while decoding a body: ${reply.detail}`);
        job.reject(new HttpError(reply.status, reply.message));
      }
    }
    this.dispatch();
  }

  /** Ends a worker (stuck or failed) and puts a fresh one in its place. */
  private replace(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    void slot.worker.terminate();
    if (!this.closed) this.slots.push(this.spawn());
  }

  private timeout(slot: Slot): void {
    const job = this.settle(slot);
    this.replace(slot);
    job?.reject(busy(`decoding the body took longer than ${this.timeoutMs} ms; refused`));
    this.dispatch();
  }

  private fail(slot: Slot, err: Error): void {
    const job = this.settle(slot);
    this.log(`decode worker failed: ${err.message}`);
    this.replace(slot);
    job?.reject(new HttpError(500, "internal server error"));
    this.dispatch();
  }

  /** Refuses what still waits and ends the workers. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(busy("the server is shutting down"));
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      const job = this.settle(slot);
      job?.reject(busy("the server is shutting down"));
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
