// Checkpoints in the format mnistc wrote before its backend-neutral one (format 1: tfjs's layers
// model, model.json + weights.bin, tfjs names and layouts), written from a tfjs model as that
// mnistc did: what the tests of reading old checkpoints start from. A real one written by that
// mnistc, training.json and optimizer.bin included, is test/fixtures/checkpoints/every-op-v1/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as tfNs from "@tensorflow/tfjs";

/** What `model.save` hands to a save handler: topology, weight manifest and bytes. */
async function captureModel(tf: typeof tfNs, model: tfNs.LayersModel) {
  let captured: { topology: unknown; specs: tfNs.io.WeightsManifestEntry[]; data: Uint8Array } = {
    topology: undefined,
    specs: [],
    data: new Uint8Array(),
  };
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const parts = artifacts.weightData ?? new ArrayBuffer(0);
      const buffers = Array.isArray(parts) ? parts : [parts];
      const data = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
      let off = 0;
      for (const b of buffers) {
        data.set(new Uint8Array(b), off);
        off += b.byteLength;
      }
      captured = { topology: artifacts.modelTopology, specs: artifacts.weightSpecs ?? [], data };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  return captured;
}

/** Writes `model`'s weights as a format-1 checkpoint folder (model.json + weights.bin). */
export async function writeLegacyCheckpoint(
  tf: typeof tfNs,
  model: tfNs.LayersModel,
  dir: string,
): Promise<void> {
  const { topology, specs, data } = await captureModel(tf, model);
  mkdirSync(dir, { recursive: true });
  const manifest = [{ paths: ["weights.bin"], weights: specs }];
  writeFileSync(
    join(dir, "model.json"),
    JSON.stringify({ format: "layers-model", modelTopology: topology, weightsManifest: manifest }),
  );
  writeFileSync(join(dir, "weights.bin"), data);
}
