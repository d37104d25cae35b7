// Reads a request body into memory with a hard size limit. An oversized body is refused as soon as
// it is known to be too large (from Content-Length, or while streaming for chunked bodies), so a
// client cannot make the server buffer more than the limit. A body that has not fully arrived
// within `timeoutMs` of the start of reading (a client trickling bytes) is a 408.
import type { IncomingMessage } from "node:http";
import { HttpError } from "./http-error.js";

export const MAX_BODY_BYTES = 1024 * 1024;

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body is larger than ${limit} bytes`);
}

export const BODY_TIMEOUT_MS = 30_000;

export function readBody(
  req: IncomingMessage,
  limit = MAX_BODY_BYTES,
  timeoutMs = BODY_TIMEOUT_MS,
): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
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
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks, size));
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
