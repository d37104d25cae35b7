// POST /api/predict: turns a request body into the C·H·W bytes the model sees, and the answer's
// shape. What a picture becomes is the model's preprocessing profile (`ServeProfile`), prepared by
// exactly the code `mnistc predict` uses (src/runtime/inference/preprocess.ts). Two body kinds:
// - an image, `image/png`, `image/jpeg` or `image/x-portable-graymap`, any size: for a `digit`
//   model (MNIST handwriting) polarity, crop, fit 20x20, centre of mass in 28x28; for a `resize`
//   model converted to its channels and resized to its height×width. The page sends its canvas or
//   the user's file this way.
// - `application/json` `{"pixels": [C·H·W integers 0-255]}`: already the model's input (NCHW:
//   channel planes of row-major rows; for MNIST white on black and centred), fed as is, exactly
//   like a dataset's own test set. With `"preprocess": true` a digit model treats them as a raw
//   28x28 drawing and prepares it like a PNG; for a resize model pixels of its own size are what
//   resizing would give, so they are fed as is.
import type { PreprocessProfile } from "../../compiler/datasets.js";
import { UserError } from "../../errors.js";
import {
  MNIST_SIDE,
  type ModelInput,
  prepareImage,
  preprocessImage,
} from "../inference/preprocess.js";
import { HttpError } from "./http-error.js";

/** What the body parser needs to know of the model: its input and how a picture is prepared. */
export interface ServeProfile {
  input: ModelInput;
  preprocess: PreprocessProfile;
}

/** An MNIST handwriting model's profile: the parser's default. */
export const DIGIT_PROFILE: ServeProfile = {
  input: { channels: 1, height: MNIST_SIDE, width: MNIST_SIDE },
  preprocess: "digit",
};

/** The decoder's limit (src/runtime/inference/image.ts), the same for `predict` and the server. */
export { MAX_IMAGE_PIXELS } from "../inference/image.js";

export interface Prediction {
  /** The predicted class's index. */
  class: number;
  /** Its name (the model's metadata; the number when it names none). */
  label: string;
  /** Digit models only, as before datasets: the class, which is the digit. */
  digit?: number;
  /** One probability per class, summing to 1. */
  probabilities: number[];
  /** Server-side time from the body read to the answer (decode, preprocess, batch, model), ms. */
  ms: number;
  /** Digit models: the 784 pixel values (0-255, white on black) the model saw, row-major. */
  input28?: number[];
  /** Other models: the C·H·W values (0-255, NCHW) the model saw. */
  input?: number[];
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

function sizeOf({ input }: ServeProfile): number {
  return input.channels * input.height * input.width;
}

/** How the pixels are laid out, for messages: "28x28, row-major" or "3x32x32, NCHW: ...". */
function layout({ input: { channels, height, width } }: ServeProfile): string {
  return channels === 1
    ? `${height}x${width}, row-major`
    : `${channels}x${height}x${width}, NCHW: ${channels} planes of ${height}x${width}, row-major`;
}

function parseJsonPixels(body: Buffer, profile: ServeProfile): Uint8Array {
  const size = sizeOf(profile);
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `expected a JSON object {"pixels": [${size} integers 0-255]}`);
  }
  const { pixels, preprocess } = value as { pixels?: unknown; preprocess?: unknown };
  if (!Array.isArray(pixels)) {
    throw new HttpError(400, `"pixels" must be an array of ${size} integers 0-255`);
  }
  if (pixels.length !== size) {
    throw new HttpError(
      400,
      `"pixels" has ${pixels.length} values; expected ${size} (${layout(profile)})`,
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
  if (!preprocess || profile.preprocess !== "digit") return raw;
  return prepare(() => preprocessImage(raw, MNIST_SIDE, MNIST_SIDE, "the pixels"));
}

type ImageKind = "PNG" | "JPEG" | "PGM";

const SIGNATURE_BYTE: Record<ImageKind, number> = { PNG: 0x89, JPEG: 0xff, PGM: 0x50 };

function parseImage(body: Buffer, kind: ImageKind, profile: ServeProfile): Uint8Array {
  if (body[0] !== SIGNATURE_BYTE[kind]) throw new HttpError(400, `the body is not a ${kind} image`);
  // The digit profile reads images as `mnistc predict` does, which takes PNG and PGM only.
  if (kind === "JPEG" && profile.preprocess === "digit") {
    throw new HttpError(
      415,
      "this model reads handwritten digits from PNG or PGM images, not JPEG: send a PNG",
    );
  }
  // The decoder checks the size the image will really take before allocating it.
  return prepare(() => prepareImage(body, `the ${kind} body`, profile.input, profile.preprocess));
}

/**
 * What a body holds, by its first bytes. Clients label raw uploads loosely (curl's `--data-binary`
 * says application/x-www-form-urlencoded, a browser gives a .pgm file no type), so an unlabelled
 * or mislabelled body is recognized by its content rather than refused.
 */
function sniff(body: Buffer): ImageKind | "JSON" | undefined {
  if (body.subarray(0, 8).equals(PNG_SIGNATURE)) return "PNG";
  if (body.subarray(0, 3).equals(JPEG_SIGNATURE)) return "JPEG";
  if (/^P[25]\s/.test(body.subarray(0, 3).toString("latin1"))) return "PGM";
  if (/^\s*\{/.test(body.subarray(0, 64).toString("utf8"))) return "JSON";
  return undefined;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_SIGNATURE = Buffer.from([0xff, 0xd8, 0xff]);

const DECLARED: Record<string, ImageKind> = {
  "image/png": "PNG",
  "image/jpeg": "JPEG",
  "image/jpg": "JPEG",
  "image/x-portable-graymap": "PGM",
};

/**
 * The C·H·W bytes (0-255, NCHW) the model is to classify for a request; an MNIST model's 784
 * (white on black, row-major) when no profile is given.
 */
export function parsePredictBody(
  contentType: string | undefined,
  body: Buffer,
  profile: ServeProfile = DIGIT_PROFILE,
): Uint8Array {
  if (body.length === 0) throw new HttpError(400, "empty body: send an image or JSON pixels");
  const type = mediaType(contentType);
  // A declared type is taken at its word, so a broken PNG is reported as a broken PNG.
  const declared = DECLARED[type];
  if (declared) return parseImage(body, declared, profile);
  if (type === "application/json") return parseJsonPixels(body, profile);
  const kind = sniff(body);
  if (kind === "JSON") return parseJsonPixels(body, profile);
  if (kind) return parseImage(body, kind, profile);
  const images = profile.preprocess === "digit" ? "a PNG or PGM image" : "a PNG, JPEG or PGM image";
  throw new HttpError(
    400,
    `the body (Content-Type ${JSON.stringify(type || "(none)")}) is neither ${images} ` +
      `nor JSON {"pixels": [${sizeOf(profile)} numbers]}`,
  );
}
