// PLACEHOLDER (to be replaced by the tfjs backend).
import type { Backend } from "../backend.js";

export const tfjsBackend: Backend = {
  name: "tfjs",
  description: "not yet implemented",
  output: "dir",
  emit() {
    throw new Error("tfjs backend: not yet implemented");
  },
};
