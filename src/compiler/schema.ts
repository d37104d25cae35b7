// The spec's JSON Schema, generated from the op table (so a new op is in the schema by construction)
// plus the model, training and data sections. `schema/mnistc.schema.json` is this object, written
// out for editors; a test keeps the file up to date.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { DATASET_NAMES, DATASETS, PREPROCESS_PROFILES } from "./datasets.js";
import type { OpKind } from "./ir.js";
import { BLOCK_KINDS, BLOCK_NAME, isBare, type JsonSchema, LAYER_KINDS, OPS } from "./ops.js";
import { RANGES, type Range } from "./ranges.js";

export { BLOCK_NAME };

const positiveInt = (description: string): JsonSchema => ({
  type: "integer",
  minimum: 1,
  description,
});
const positiveNumber = (description: string): JsonSchema => ({
  type: "number",
  exclusiveMinimum: 0,
  description,
});
const intIn = ({ min, max }: Range, description: string): JsonSchema => ({
  type: "integer",
  minimum: min,
  maximum: max,
  description,
});
const fraction = (description: string): JsonSchema => ({
  type: "number",
  minimum: 0,
  maximum: 1,
  description,
});

/** The attributes map of one op: `{ out: 16, kernel: 3 }`; null allowed when nothing is required. */
function attributesSchema(kind: OpKind): JsonSchema {
  const op = OPS[kind];
  return {
    description: op.description,
    type: op.required.length > 0 ? "object" : ["object", "null"],
    properties: op.attributes,
    ...(op.required.length > 0 ? { required: [...op.required] } : {}),
    additionalProperties: false,
  };
}

/** One list item: `relu`, `conv: {...}`, or (top level only) a named block `conv1: [ ... ]`. */
function layerSchema(topLevel: boolean): JsonSchema {
  const bare = LAYER_KINDS.filter(isBare);
  return {
    description: topLevel
      ? "a layer (`relu`, `conv: { out: 16, kernel: 3 }`) or a named block of layers (`conv1: [ ... ]`)"
      : "a layer: `relu` or `conv: { out: 16, kernel: 3 }`",
    type: ["string", "object"],
    if: { type: "string" },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a promise
    then: { enum: bare },
    else: {
      type: "object",
      minProperties: 1,
      maxProperties: 1,
      propertyNames: { pattern: BLOCK_NAME },
      properties: Object.fromEntries(LAYER_KINDS.map((kind) => [kind, attributesSchema(kind)])),
      additionalProperties: topLevel ? blockSchema() : false,
    },
  };
}

/**
 * A named block: `conv1: [ ... ]`, or combined with an earlier block's output by one block op,
 * `res1: { add: conv1, layers: [...] }` (the block's output plus block conv1's; also `mul:`,
 * `concat:`). `if`/`else` rather than `anyOf`, so each form's errors are its own.
 */
function blockSchema(): JsonSchema {
  const layers: JsonSchema = {
    type: "array",
    minItems: 1,
    items: { $ref: "#/definitions/blockLayer" },
  };
  return {
    description:
      "a named block (nn.Sequential): its layers are named <block>.0, <block>.1, ...; or { add: <earlier block>, layers: [...] } for a residual block (mul: a gate, concat: a dense connection)",
    type: ["array", "object"],
    if: { type: "array" },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a promise
    then: layers,
    else: {
      type: "object",
      required: ["layers"],
      additionalProperties: false,
      // `layers` and at most one block op.
      maxProperties: 2,
      properties: {
        ...Object.assign({}, ...BLOCK_KINDS.map((kind) => OPS[kind].attributes)),
        layers: { ...layers, description: "the block's layers" },
      },
    },
  };
}

/** A tagged union on `type`: each branch lists its own fields, so unknown ones are reported. */
function tagged(
  description: string,
  branches: Record<string, { properties: Record<string, JsonSchema>; required?: string[] }>,
): JsonSchema {
  return {
    description,
    type: "object",
    required: ["type"],
    properties: { type: { enum: Object.keys(branches) } },
    allOf: Object.entries(branches).map(([type, branch]) => ({
      if: { type: "object", properties: { type: { const: type } }, required: ["type"] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a promise
      then: {
        type: "object",
        properties: { type: { const: type }, ...branch.properties },
        required: ["type", ...(branch.required ?? [])],
        additionalProperties: false,
      },
    })),
  };
}

export function buildSchema(): JsonSchema {
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "mnistc model spec",
    description: "A small image classifier for mnistc: layers, training recipe and data.",
    type: "object",
    required: ["input", "classes", "layers"],
    additionalProperties: false,
    properties: {
      name: {
        type: "string",
        pattern: "^[A-Za-z0-9_.-]+$",
        description: "model name; default: the file name without extension",
      },
      input: {
        description: "one input image, PyTorch order [C, H, W]",
        type: "object",
        required: ["channels", "height", "width"],
        additionalProperties: false,
        properties: {
          channels: positiveInt("image channels (1 for MNIST)"),
          height: positiveInt("image height in pixels"),
          width: positiveInt("image width in pixels"),
        },
      },
      classes: { type: "integer", minimum: 2, description: "number of classes the head outputs" },
      budget: positiveInt("trainable-parameter budget; `mnistc params` and `check` fail when over"),
      layers: {
        description: "the network, in order; ends with log_softmax over [classes]",
        type: "array",
        minItems: 1,
        items: layerSchema(true),
      },
      train: {
        description:
          "training recipe; defaults are the seed's (15 epochs, batch 128, SGD 0.01/0.9, seed 1)",
        type: "object",
        additionalProperties: false,
        properties: {
          epochs: intIn(RANGES.epochs, "default 15 (the seed's)"),
          batch_size: intIn(RANGES.batchSize, "default 128 (the seed's)"),
          seed: intIn(RANGES.seed, "random seed; default 1"),
          label_smoothing: {
            type: "number",
            minimum: 0,
            exclusiveMaximum: 1,
            description:
              "train on (1-ε)·one-hot + ε/classes, as CrossEntropyLoss(label_smoothing=ε); default 0",
          },
          ema: {
            type: "object",
            additionalProperties: false,
            required: ["decay"],
            description:
              "an exponential moving average of the weights, evaluated and exported: torch.optim.swa_utils.AveragedModel(model, avg_fn=decay·avg + (1-decay)·w, use_buffers=True) updated after every optimizer step",
            properties: {
              decay: {
                type: "number",
                exclusiveMinimum: 0,
                exclusiveMaximum: 1,
                description: "weight of the average kept at each step (e.g. 0.999)",
              },
            },
          },
          optimizer: tagged("default: { type: sgd, lr: 0.01, momentum: 0.9 } (the seed's)", {
            sgd: {
              properties: {
                lr: positiveNumber("learning rate; default 0.001 (PyTorch's)"),
                momentum: fraction("default 0"),
                weight_decay: { type: "number", minimum: 0, description: "default 0" },
                nesterov: { type: "boolean", description: "default false" },
              },
            },
            adam: {
              properties: {
                lr: positiveNumber("learning rate; default 0.001"),
                betas: {
                  type: "array",
                  items: { type: "number", minimum: 0, exclusiveMaximum: 1 },
                  minItems: 2,
                  maxItems: 2,
                  description: "default [0.9, 0.999]",
                },
                eps: positiveNumber("default 1e-8"),
                weight_decay: { type: "number", minimum: 0, description: "default 0" },
              },
            },
          }),
          scheduler: tagged("learning-rate schedule; default none", {
            none: { properties: {} },
            step: {
              properties: {
                step_size: positiveInt("epochs between decays (StepLR, stepped per epoch)"),
                gamma: positiveNumber("decay factor; default 0.1"),
              },
              required: ["step_size"],
            },
            onecycle: {
              properties: {
                max_lr: positiveNumber("peak learning rate (OneCycleLR, stepped per batch)"),
                pct_start: {
                  type: "number",
                  exclusiveMinimum: 0,
                  exclusiveMaximum: 1,
                  description: "default 0.3",
                },
                anneal_strategy: { enum: ["cos", "linear"], description: "default cos" },
                div_factor: positiveNumber("initial lr = max_lr / div_factor; default 25"),
                final_div_factor: positiveNumber(
                  "final lr = initial lr / final_div_factor; default 1e4",
                ),
              },
              required: ["max_lr"],
            },
          }),
          distill: {
            description:
              "knowledge distillation (Hinton et al.): the loss is (1-weight)·CrossEntropyLoss + weight·T²·KLDivLoss(log_softmax(z/T), the teachers' mean softmax(z_t/T)), the teachers run in inference mode on the same augmented batch; default none",
            type: "object",
            additionalProperties: false,
            required: ["teachers"],
            properties: {
              teachers: {
                type: "array",
                minItems: 1,
                maxItems: 16,
                items: { type: "string", minLength: 1 },
                description:
                  "ONNX classifiers (mnistc's own or any with one image input), relative to the spec's folder; trained on training images only",
              },
              weight: {
                type: "number",
                exclusiveMinimum: 0,
                maximum: 1,
                description: "weight of the distillation term; default 0.5",
              },
              temperature: {
                ...positiveNumber(
                  "T: both sides' logits are divided by it, and the term multiplied by T²; default 1",
                ),
                // Beyond it float32 loses the KL term: both sides are near uniform, times T².
                maximum: 100,
              },
            },
          },
          augment: {
            description: "training-time augmentation; default none",
            type: "object",
            additionalProperties: false,
            properties: {
              hflip: {
                type: "boolean",
                description:
                  "mirror left-right with probability 0.5 (RandomHorizontalFlip); default false",
              },
              crop: {
                type: "object",
                additionalProperties: false,
                required: ["padding"],
                properties: {
                  padding: {
                    type: "integer",
                    minimum: 0,
                    maximum: 64,
                    description: "zero padding on each side before the crop",
                  },
                },
                description:
                  "a window of the input's size at a random offset of the zero-padded image (RandomCrop(size, padding)); default none",
              },
              rotate: {
                type: "number",
                minimum: 0,
                maximum: 180,
                description:
                  "random rotation within ±degrees, zero fill (RandomRotation); default 0",
              },
              translate: {
                type: "number",
                minimum: 0,
                maximum: 0.5,
                description:
                  "random shift within ±fraction of the width and height, whole pixels (RandomAffine's translate); default 0",
              },
              scale: {
                type: "array",
                items: { type: "number", exclusiveMinimum: 0, maximum: 4 },
                minItems: 2,
                maxItems: 2,
                description:
                  "random scale drawn in [lo, hi] (RandomAffine's scale); default [1, 1]",
              },
            },
          },
        },
      },
      data: {
        description:
          "dataset (a name from the dataset table; default mnist), where its files are, normalization and preprocessing",
        type: "object",
        additionalProperties: false,
        properties: {
          dataset: {
            enum: [...DATASET_NAMES],
            description: DATASET_NAMES.map((n) => `${n}: ${DATASETS[n].description}`).join("; "),
          },
          path: {
            type: "string",
            minLength: 1,
            description:
              "the dataset's folder, relative to the spec's folder (`--data DIR` overrides it)",
          },
          preprocess: {
            enum: [...PREPROCESS_PROFILES],
            description:
              "how predict and serve prepare a picture: digit (crop, fit 20x20, centre by mass) or resize; default the dataset's",
          },
          mean: {
            type: "array",
            minItems: 1,
            items: { type: "number" },
            description:
              "per channel, x' = (x/255 - mean) / std; default the dataset's, else computed from its training split",
          },
          std: {
            type: "array",
            minItems: 1,
            // What a model may carry (formats/onnx-metadata.ts MIN_STD): smaller divides pixels into infinities.
            items: { type: "number", minimum: 1e-6 },
            description: "per channel",
          },
        },
      },
    },
    definitions: { blockLayer: layerSchema(false) },
  };
}

let validator: ValidateFunction | undefined;

/** Validate a spec value; every error, with the failing schema attached (for messages). */
export function validate(value: unknown): ErrorObject[] {
  validator ??= new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    allowUnionTypes: true,
  }).compile(buildSchema());
  return validator(value) ? [] : [...(validator.errors ?? [])];
}
