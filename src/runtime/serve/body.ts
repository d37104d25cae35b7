// Reads a request body into memory with a hard size limit. An oversized body is refused as soon as
// it is known to be too large (from Content-Length, or while streaming for chunked bodies), so a
// client cannot make the server buffer more than the limit.
import type { IncomingMessage } from "node:http";
import { HttpError } from "./http-error.js";

export const MAX_BODY_BYTES = 1024 * 1024;

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body is larger than ${limit} bytes`);
}

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; the caller answers 413 and closes the connection.
        req.off("data", onData);
        req.off("end", onEnd);
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks, size));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", reject);
    // A client that hangs up mid-body: settle, so the handler does not wait forever.
    req.on("close", () => {
      if (!req.complete) reject(new HttpError(400, "the request body was cut off"));
    });
  });
}
