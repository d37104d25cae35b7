// What a training run knows of its spec: what the emitted `model.mjs` exports as `spec`. A leaf
// module, so the loop and the steppers both import it without importing each other.
import type { DataIR, InputIR, TrainIR } from "../../compiler/ir.js";
import type { TfjsWeights } from "./state.js";

/** What the emitted `model.mjs` exports as `spec`: the settings training needs. */
export interface TrainSpec {
  name: string;
  input: InputIR;
  classes: number;
  train: TrainIR;
  data: DataIR;
  /** Where each PyTorch parameter lives in the tfjs model: its weight name and layout. */
  tfjsWeights: TfjsWeights;
}
