// `mnistc inspect MODEL.onnx [--json]`: what is inside an ONNX file (any, not only mnistc's).
import { readFile } from "node:fs/promises";
import { describeModel, formatDescription } from "../backends/onnx/dump.js";
import { UserError } from "../errors.js";
import { decodeModel } from "../formats/onnx-proto.js";

export interface InspectOptions {
  json?: boolean;
}

async function readModelBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`${file}: no such file`);
    if (code === "EISDIR") throw new UserError(`${file}: is a directory, not an ONNX file`);
    throw new UserError(`${file}: cannot read (${code ?? err})`);
  }
}

export async function inspect(file: string, opts: InspectOptions): Promise<number> {
  const description = describeModel(decodeModel(await readModelBytes(file), file));
  process.stdout.write(
    opts.json ? `${JSON.stringify(description, null, 2)}\n` : formatDescription(description),
  );
  return 0;
}
