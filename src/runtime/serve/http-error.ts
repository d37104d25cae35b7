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
