// Which module specifier an emitted tfjs program imports the runtime by, given where it is written.
// Inside this package, Node's package self-reference resolves `mnistc/runtime` (the package export
// of dist/src/runtime/index.js); anywhere else a relative path to the built runtime keeps
// `node OUT/train.mjs` working wherever OUT is.
import { isAbsolute, relative, resolve, sep } from "node:path";
import { packagePath, packageRoot } from "../../paths.js";

export const DEFAULT_RUNTIME_IMPORT = "mnistc/runtime";

export function runtimeImportFor(outDir: string): string {
  const abs = resolve(outDir);
  const fromRoot = relative(packageRoot, abs);
  const inside = fromRoot === "" || (!fromRoot.startsWith("..") && !isAbsolute(fromRoot));
  // A dependency under node_modules has a package.json of its own: self-reference fails there.
  if (inside && !fromRoot.split(sep).includes("node_modules")) return DEFAULT_RUNTIME_IMPORT;
  const target = relative(abs, packagePath("dist", "src", "runtime", "index.js"))
    .split(sep)
    .join("/");
  return target.startsWith(".") ? target : `./${target}`;
}
