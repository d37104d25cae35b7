// A user's mistake outside the compiler (a bad file, a bad request): the CLI prints its message,
// never a stack trace, and exits 1. Anything else that is thrown is a bug.
export class UserError extends Error {
  override name = "UserError";
}
