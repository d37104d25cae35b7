// Reads a request body into memory with a hard size limit. An oversized body is refused as soon as
// it is known to be too large (from Content-Length, or while streaming for chunked bodies), so a
// client cannot make the server buffer more than the limit. A body that has not fully arrived
// within `timeoutMs` of the start of reading (a client trickling bytes) is a 408.
//
// Across requests, the bytes of every body being read or decoded come out of one budget
// (`BodyBudget`): a body it cannot hold is a 503 before it is read. Without it, 1,500 connections
// each trickling a body just under the limit took the server from 104 MB to 1.7 GB.
import type { IncomingMessage } from "node:http";
import { busy, HttpError } from "./http-error.js";

export const MAX_BODY_BYTES = 1024 * 1024;
/** Bytes of request bodies held at once, all requests together (64 bodies of the largest size). */
export const MAX_BODIES_BYTES = 64 * 1024 * 1024;

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body is larger than ${limit} bytes`);
}

export const BODY_TIMEOUT_MS = 30_000;

/** The bytes of bodies being read or decoded, all requests together, and its limit. */
export class BodyBudget {
  private used = 0;
  constructor(readonly limit = MAX_BODIES_BYTES) {}

  /** One request's share: taken as its body is known, given back once by `release()`. */
  lease(): BodyLease {
    let held = 0;
    return {
      take: (bytes: number): boolean => {
        if (this.used + bytes > this.limit) return false;
        this.used += bytes;
        held += bytes;
        return true;
      },
      release: (): void => {
        this.used -= held;
        held = 0;
      },
    };
  }

  /** Bytes held now (for tests and the bench). */
  get inUse(): number {
    return this.used;
  }
}

export interface BodyLease {
  take(bytes: number): boolean;
  release(): void;
}

function overBudget(limit: number): HttpError {
  return busy(
    `the server is reading as many request bodies as it holds at once (${limit / 1024 / 1024} MiB in all); retry shortly`,
  );
}

export function readBody(
  req: IncomingMessage,
  limit = MAX_BODY_BYTES,
  timeoutMs = BODY_TIMEOUT_MS,
  lease?: BodyLease,
  budgetLimit = MAX_BODIES_BYTES,
): Promise<Buffer> {
  const header = req.headers["content-length"];
  const declared = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > limit) return Promise.reject(tooLarge(limit));
  // A declared body is held whole from the start, in one buffer the chunks are copied into (no
  // chunk kept, however small the pieces a client sends); a chunked one is counted as it comes.
  if (declared !== undefined && lease && !lease.take(declared)) {
    return Promise.reject(overBudget(budgetLimit));
  }
  const whole = declared !== undefined ? Buffer.allocUnsafe(declared) : undefined;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: HttpError): void => {
      // Stop buffering; the caller answers and closes the connection.
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stop(tooLarge(limit));
        return;
      }
      if (whole) {
        // Node's parser never passes more than Content-Length.
        chunk.copy(whole, size - chunk.length);
        return;
      }
      if (lease && !lease.take(chunk.length)) {
        stop(overBudget(budgetLimit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks, size));
    };
    const timer = setTimeout(
      () => stop(new HttpError(408, `the request body did not arrive within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on("data", onData);
    req.on("end", onEnd);
    // Node says "aborted" (an Error, not ours) when the client hangs up mid-body.
    req.on("error", () => {
      clearTimeout(timer);
      reject(new HttpError(400, "the request body was cut off"));
    });
    // A client that hangs up mid-body: settle, so the handler does not wait forever.
    req.on("close", () => {
      clearTimeout(timer);
      if (!req.complete) reject(new HttpError(400, "the request body was cut off"));
    });
  });
}
