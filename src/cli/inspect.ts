// `mnistc inspect MODEL.onnx [--json]`: what is inside an ONNX file (any, not only mnistc's).
import { readFile } from "node:fs/promises";
import { describeModel, formatDescription } from "../backends/onnx/dump.js";
import { cannotRead } from "../errors.js";
import { decodeModel } from "../formats/onnx-proto.js";

export interface InspectOptions {
  json?: boolean;
}

async function readModelBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    throw cannotRead(file, err, "an ONNX file");
  }
}

export async function inspect(file: string, opts: InspectOptions): Promise<number> {
  const description = describeModel(decodeModel(await readModelBytes(file), file));
  process.stdout.write(
    opts.json ? `${JSON.stringify(description, null, 2)}\n` : formatDescription(description),
  );
  return 0;
}
