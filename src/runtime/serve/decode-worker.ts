// The decode pool's worker (see decode-pool.ts): turns one request body into the C·H·W bytes the
// model sees, off the server's event loop. The model's input and preprocessing profile come once,
// as the worker's data. A user's mistake comes back as its status and message; anything else as a
// 500 with the stack for the server's log.
import { parentPort, workerData } from "node:worker_threads";
import { HttpError } from "./http-error.js";
import { DIGIT_PROFILE, parsePredictBody, type ServeProfile } from "./predict.js";

export interface DecodeWorkerData {
  profile: ServeProfile;
}

export interface DecodeRequest {
  id: number;
  contentType: string | undefined;
  body: Uint8Array;
}

export type DecodeReply =
  | { id: number; pixels: Uint8Array }
  | { id: number; status: number; message: string; detail?: string };

const profile = (workerData as DecodeWorkerData | null)?.profile ?? DIGIT_PROFILE;

parentPort?.on("message", (job: DecodeRequest) => {
  let reply: DecodeReply;
  try {
    const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    reply = { id: job.id, pixels: parsePredictBody(job.contentType, body, profile) };
  } catch (err) {
    reply =
      err instanceof HttpError
        ? { id: job.id, status: err.status, message: err.message }
        : {
            id: job.id,
            status: 500,
            message: "internal server error",
            detail: (err as Error).stack ?? String(err),
          };
  }
  if ("pixels" in reply) parentPort?.postMessage(reply, [reply.pixels.buffer as ArrayBuffer]);
  else parentPort?.postMessage(reply);
});
