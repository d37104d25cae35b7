// A request the server refuses: the status and a message for the client. Route handlers throw it;
// the server turns it into `{"error": message}` with that status. Anything else thrown is a bug (500).
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, e.g. `Allow` for 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Seconds a client is asked to wait when the server is too busy to take its request. */
export const RETRY_AFTER_SECONDS = 1;

/** 503 with `Retry-After`: a bounded queue is full, or the server is stopping. */
export function busy(message: string): HttpError {
  return new HttpError(503, message, { "Retry-After": String(RETRY_AFTER_SECONDS) });
}
