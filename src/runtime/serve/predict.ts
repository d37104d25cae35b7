// POST /api/predict: turns a request body into the 28x28 image the model sees, runs the model and
// shapes the answer. Two body kinds:
// - `image/png` (or `image/x-portable-graymap`): any size, either polarity; decoded and prepared by
//   exactly the code `mnistc predict` uses (src/runtime/image.ts, src/runtime/preprocess.ts:
//   polarity, crop, fit 20x20, centre of mass in 28x28). The page sends its canvas this way.
// - `application/json` `{"pixels": [784 integers 0-255]}`: already an MNIST input (row-major 28x28,
//   white digit on black, centred), so it is fed as is, exactly like MNIST's own test set (running
//   the crop-and-centre again would resample an already prepared digit). With `"preprocess": true`
//   the pixels are instead treated as a raw 28x28 drawing and prepared like a PNG.
import { UserError } from "../../errors.js";
import { decodeImage } from "../inference/image.js";
import { MNIST_SIDE, preprocessImage } from "../inference/preprocess.js";
import { HttpError } from "./http-error.js";

export const PIXELS = MNIST_SIDE * MNIST_SIDE;

/** The decoder's limit (src/runtime/inference/image.ts), the same for `predict` and the server. */
export { MAX_IMAGE_PIXELS } from "../inference/image.js";

export interface Prediction {
  digit: number;
  /** One probability per class, summing to 1. */
  probabilities: number[];
  /** Server-side time from the body read to the answer (decode, preprocess, batch, model), ms. */
  ms: number;
  /** The 784 pixel values (0-255, white on black) the model saw, row-major. */
  input28: number[];
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** Preprocessing's own user errors (a blank image, a broken file) become 400s with its message. */
function prepare(make: () => Uint8Array): Uint8Array {
  try {
    return make();
  } catch (err) {
    if (err instanceof UserError) throw new HttpError(400, err.message);
    throw err;
  }
}

function parseJsonPixels(body: Buffer): Uint8Array {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'expected a JSON object {"pixels": [784 integers 0-255]}');
  }
  const { pixels, preprocess } = value as { pixels?: unknown; preprocess?: unknown };
  if (!Array.isArray(pixels)) {
    throw new HttpError(400, '"pixels" must be an array of 784 integers 0-255');
  }
  if (pixels.length !== PIXELS) {
    throw new HttpError(
      400,
      `"pixels" has ${pixels.length} values; expected ${PIXELS} (28x28, row-major)`,
    );
  }
  const bad = pixels.findIndex((p) => !Number.isInteger(p) || p < 0 || p > 255);
  if (bad >= 0) {
    throw new HttpError(
      400,
      `"pixels"[${bad}] is ${JSON.stringify(pixels[bad])}; expected an integer 0-255`,
    );
  }
  if (preprocess !== undefined && typeof preprocess !== "boolean") {
    throw new HttpError(400, '"preprocess" must be true or false');
  }
  const raw = Uint8Array.from(pixels as number[]);
  if (!preprocess) return raw;
  return prepare(() => preprocessImage(raw, MNIST_SIDE, MNIST_SIDE, "the pixels"));
}

function parseImage(body: Buffer, kind: "PNG" | "PGM"): Uint8Array {
  const signature = kind === "PNG" ? body[0] === 0x89 : body[0] === 0x50;
  if (!signature) throw new HttpError(400, `the body is not a ${kind} image`);
  // The decoder checks the size the image will really take before allocating it.
  return prepare(() => {
    const image = decodeImage(body, `the ${kind} body`);
    return preprocessImage(image.data, image.width, image.height, `the ${kind} body`);
  });
}

/**
 * What a body holds, by its first bytes. Clients label raw uploads loosely (curl's `--data-binary`
 * says application/x-www-form-urlencoded), so an unlabelled or mislabelled body is recognized by
 * its content rather than refused.
 */
function sniff(body: Buffer): "PNG" | "PGM" | "JSON" | undefined {
  if (body.subarray(0, 8).equals(PNG_SIGNATURE)) return "PNG";
  if (/^P[25]\s/.test(body.subarray(0, 3).toString("latin1"))) return "PGM";
  if (/^\s*\{/.test(body.subarray(0, 64).toString("utf8"))) return "JSON";
  return undefined;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The 784 pixels (0-255, white on black, row-major) the model is to classify for a request. */
export function parsePredictBody(contentType: string | undefined, body: Buffer): Uint8Array {
  if (body.length === 0) throw new HttpError(400, "empty body: send a PNG image or JSON pixels");
  const type = mediaType(contentType);
  // A declared type is taken at its word, so a broken PNG is reported as a broken PNG.
  if (type === "image/png") return parseImage(body, "PNG");
  if (type === "image/x-portable-graymap") return parseImage(body, "PGM");
  if (type === "application/json") return parseJsonPixels(body);
  const kind = sniff(body);
  if (kind === "JSON") return parseJsonPixels(body);
  if (kind) return parseImage(body, kind);
  throw new HttpError(
    400,
    `the body (Content-Type ${JSON.stringify(type || "(none)")}) is neither a PNG or PGM image ` +
      'nor JSON {"pixels": [784 numbers]}',
  );
}
