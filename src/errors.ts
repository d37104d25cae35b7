// A user's mistake outside the compiler (a bad file, a bad request): the CLI prints its message,
// never a stack trace, and exits 1. Anything else that is thrown is a bug.
export class UserError extends Error {
  override name = "UserError";
}

/** An errno code in words, for one-line errors. */
export function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "read-only file system";
    case "ENOSPC":
      return "no space left on the device";
    case "ENOTDIR":
      return "a part of the path is not a folder";
    case "EISDIR":
      return "is a folder";
    case "ELOOP":
      return "too many symbolic links";
    case "ENAMETOOLONG":
      return "the name is too long";
    default:
      return code ?? (err as Error).message ?? String(err);
  }
}

/**
 * Why a file could not be read, in words a user acts on: `no such file`, `is a directory, not
 * <what>`, `permission denied`, else `cannot read (<errno in words>)`; a UserError says its own.
 * The one wording for every reader.
 */
export function readFailure(err: unknown, what = "a file"): string {
  if (err instanceof UserError) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return `is a directory, not ${what}`;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return `cannot read (${errnoText(err)})`;
}

/** `<file>: <why>` (see `readFailure`) as the user error a reader throws. */
export function cannotRead(file: string, err: unknown, what?: string): UserError {
  return new UserError(`${file}: ${readFailure(err, what)}`);
}
