// Where the package's own files (templates, schema, shipped models, specs) live, whether code runs
// from `src/` through a loader or compiled into `dist/src/`.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`mnistc: no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the package, e.g. `packagePath("src", "backends", "tfjs", "templates")`. */
export function packagePath(...parts: string[]): string {
  return join(packageRoot, ...parts);
}
