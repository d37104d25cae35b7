// Names that become paths: a spec's `name` (or the default taken from its file name) names the
// run folder `runs/<name>` and the files written there. `check` refuses a name that could leave
// the output folder or is not portable as a file name: no separators, not `.`/`..`, no leading dot
// or dash, at most MAX_NAME_LENGTH characters of letters, digits, `_`, `.` and `-`.
// `nameProblem` is pure (no compiler imports), so the training runtime re-checks the name it got.

export const MAX_NAME_LENGTH = 64;

/** Why `name` cannot be a model name (a folder name), or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name === "") return "it is empty";
  if (name === "." || name === "..") return "it names the current or parent folder";
  if (/[/\\]/.test(name)) return "it contains a path separator";
  if (name.length > MAX_NAME_LENGTH) {
    return `it is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`;
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    return "use letters, digits, `_`, `.` and `-`, not starting with `.` or `-`";
  }
  return undefined;
}
