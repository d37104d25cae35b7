// `mnistc inspect MODEL.onnx [--json]`: what is inside an ONNX file (any, not only mnistc's).
import { describeModel, formatDescription } from "../backends/onnx/dump.js";
import { decodeModel } from "../formats/onnx-proto.js";
import { MAX_MODEL_BYTES } from "../runtime/inference/limits.js";
import { readRegularFile } from "../util/files.js";

export interface InspectOptions {
  json?: boolean;
}

async function readModelBytes(file: string): Promise<Uint8Array> {
  return readRegularFile(file, { maxBytes: MAX_MODEL_BYTES, what: "an ONNX file" });
}

export async function inspect(file: string, opts: InspectOptions): Promise<number> {
  const description = describeModel(decodeModel(await readModelBytes(file), file));
  process.stdout.write(
    opts.json ? `${JSON.stringify(description, null, 2)}\n` : formatDescription(description),
  );
  return 0;
}
