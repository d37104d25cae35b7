// A user's mistake outside the compiler (a bad file, a bad request): the CLI prints its message,
// never a stack trace, and exits 1. Anything else that is thrown is a bug.
export class UserError extends Error {
  override name = "UserError";
}

/**
 * Why a file could not be read, in words a user acts on: `no such file`, `is a directory, not
 * <what>`, `permission denied`, else the system's code. The one wording for every reader.
 */
export function readFailure(err: unknown, what = "a file"): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EISDIR":
      return `is a directory, not ${what}`;
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return code ? `cannot read (${code})` : `cannot read (${(err as Error).message ?? err})`;
  }
}

/** `<file>: <why>` (see `readFailure`) as the user error a reader throws. */
export function cannotRead(file: string, err: unknown, what?: string): UserError {
  return new UserError(`${file}: ${readFailure(err, what)}`);
}
