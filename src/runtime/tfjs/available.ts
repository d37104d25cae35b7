// TensorFlow.js is an optional peer dependency: the default paths (the ONNX training step,
// inference, export) never load it, so an install of mnistc does not carry its ~290 MB.
// `--backend tfjs` and the emitted `train.mjs` need it, installed where mnistc can resolve it
// (beside mnistc in a project, or with `-g` beside a global mnistc). This module imports no tfjs.
import { createRequire } from "node:module";

/** The packages `--backend tfjs` and the emitted program load. */
export const TFJS_PACKAGES = ["@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm"] as const;

/** The command that installs them (add `-g` for a global mnistc). */
export const TFJS_INSTALL = `npm install ${TFJS_PACKAGES.map((p) => `${p}@^4.22.0`).join(" ")}`;

/** The tfjs packages that mnistc cannot resolve from where it is installed (none: []). */
export function missingTfjs(): string[] {
  const require = createRequire(import.meta.url);
  return TFJS_PACKAGES.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/** What to tell a user for whom `what` needs tfjs, or undefined when it is installed. */
export function tfjsNeeded(what: string): string | undefined {
  const missing = missingTfjs();
  if (missing.length === 0) return undefined;
  return (
    `${what} needs ${missing.join(" and ")} (optional peer dependencies, not installed with ` +
    `mnistc): ${TFJS_INSTALL} (beside mnistc; with -g for a global mnistc)`
  );
}
