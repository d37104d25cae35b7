// The tfjs engine the runtime trains and predicts on: the fastest one that loads here.
// `tensorflow` (native, via the optional @tensorflow/tfjs-node) > `wasm` (XNNPACK, with the
// project's kernels) > `cpu` (pure JS, two orders of magnitude slower than wasm: the reference
// backend of tests, unusable for training).
import { createRequire } from "node:module";
import { dirname } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { UserError } from "../../errors.js";
import { registerWasmKernels } from "./kernels/index.js";

export type EngineName = "tensorflow" | "wasm" | "cpu";
export type Tfjs = typeof tf;

export interface Engine {
  tf: Tfjs;
  name: EngineName;
}

const ENGINE_NAMES: readonly EngineName[] = ["tensorflow", "wasm", "cpu"];

let pending: Promise<Engine> | undefined;

/**
 * Select and initialise the engine once per process (later calls return the same one).
 * `MNISTC_ENGINE=tensorflow|wasm|cpu` forces one; a forced engine that does not load is an error.
 */
export function initEngine(): Promise<Engine> {
  pending ??= selectEngine();
  return pending;
}

async function selectEngine(): Promise<Engine> {
  silenceCpuBanner();
  const forced = process.env.MNISTC_ENGINE?.trim();
  if (forced) {
    if (!ENGINE_NAMES.includes(forced as EngineName)) {
      throw new UserError(
        `MNISTC_ENGINE must be one of ${ENGINE_NAMES.join(", ")}, got ${JSON.stringify(forced)}`,
      );
    }
    const name = forced as EngineName;
    if (!(await tryEngine(name)))
      throw new UserError(`MNISTC_ENGINE=${name}: the ${name} engine did not load`);
    return { tf, name };
  }
  for (const name of ENGINE_NAMES) {
    if (await tryEngine(name)) return { tf, name };
  }
  throw new Error("no tfjs engine loaded (not even cpu)");
}

async function tryEngine(name: EngineName): Promise<boolean> {
  try {
    if (name === "tensorflow") {
      // Optional accelerator, not a dependency: a variable specifier keeps tsc and bundlers from
      // resolving it. It registers the `tensorflow` backend in the shared tfjs-core; if npm gave it
      // a tfjs-core of its own, our `tf` never sees the backend and we fall through.
      const specifier = "@tensorflow/tfjs-node";
      await import(specifier);
      if (tf.findBackendFactory("tensorflow") === null) return false;
    }
    if (name === "wasm") {
      // The .wasm binaries ship in the package's dist/; read them from there (no network).
      const require = createRequire(import.meta.url);
      setWasmPaths(`${dirname(require.resolve("@tensorflow/tfjs-backend-wasm"))}/`);
    }
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    if (name === "wasm") registerWasmKernels();
    return true;
  } catch {
    return false;
  }
}

/**
 * The cpu backend prints a "install tfjs-node" banner on its first tensor; the runtime already says
 * which engine runs, so switch it off (tests use cpu as the reference engine).
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
  if (cpu && "firstUse" in cpu) cpu.firstUse = false;
}
