// Model-level checks once shapes are known: the head must give log-probabilities over the classes
// (training uses NLL loss, so log_softmax comes last and the output is [classes]), and the spec must
// fit its dataset (the dataset table's shape, classes and one mean/std per channel).
import { error } from "./codes.js";
import { datasetDef, MAX_DATASET_CLASSES } from "./datasets.js";
import type { Diagnostic, Note } from "./diagnostics.js";
import type { AnyNodeIR } from "./ir.js";
import type { Lowered } from "./lower.js";
import { opDef } from "./ops.js";
import type { SourceMap } from "./parse.js";
import { describeNode, showShape } from "./shapes.js";

export function checkHead(model: Lowered, shapesKnown: boolean, source: SourceMap): Diagnostic[] {
  const last: AnyNodeIR | undefined = model.nodes[model.nodes.length - 1];
  if (!last) return [];
  const diagnostics: Diagnostic[] = [];
  const classesAt = source.key([], "classes") ?? source.top();
  if (!opDef(last.kind).logProbabilities) {
    diagnostics.push(
      error(
        "E0206",
        `the last layer is ${describeNode(last)}; end with \`log_softmax\` (training uses NLL loss on log-probabilities)`,
        last.span,
      ),
    );
  }
  if (shapesKnown && !(last.outShape.length === 1 && last.outShape[0] === model.classes)) {
    const out = last.outShape;
    const hint =
      out.length === 3 && out[1] === 1 && out[2] === 1 && out[0] === model.classes
        ? ": add `flatten` before log_softmax"
        : out.length === 3
          ? ": reduce it to [C, 1, 1] (gap or a pool), then `flatten`"
          : `: the last conv or linear should output ${model.classes}`;
    const notes: Note[] = [{ message: `classes: ${model.classes} is set here`, span: classesAt }];
    diagnostics.push(
      error(
        "E0205",
        `the model outputs ${showShape(out)} per image, expected [${model.classes}] (one log-probability per class)${hint}`,
        last.span,
        notes,
      ),
    );
  }
  return diagnostics;
}

/**
 * The spec against its dataset's table entry: a fixed image shape and class count must match,
 * a loader that converts (a folder) must be able to give the channels, and `mean`/`std` need one
 * value per channel. What only the files can tell (a folder's classes) is checked at load.
 */
export function checkDataset(model: Lowered, source: SourceMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const { dataset } = model.data;
  const def = datasetDef(dataset);
  // The note points at `dataset:`, else at `data:` (the default mnist), else nowhere.
  const dataAt = source.key(["data"], "dataset")
    ? source.at(["data", "dataset"])
    : source.key([], "data");
  const about = (what: string): Note[] => [
    { message: `the ${dataset} dataset ${what}`, ...(dataAt ? { span: dataAt } : {}) },
  ];
  const { channels, height, width } = model.input;
  const shape = def.shape;
  if (shape && (channels !== shape.channels || height !== shape.height || width !== shape.width)) {
    const fixed = `${shape.channels}x${shape.height}x${shape.width}`;
    diagnostics.push(
      error(
        "E0111",
        `input is ${channels}x${height}x${width}, but ${dataset} images are ${fixed}`,
        source.at(["input"]),
        about(`has ${fixed} images`),
      ),
    );
  } else if (!shape && !def.channels.includes(channels)) {
    const can = def.channels.join(" or ");
    diagnostics.push(
      error(
        "E0111",
        `input has ${channels} channel(s), but ${dataset} images are read with ${can}`,
        source.at(["input", "channels"]),
        about(`gives images of ${can} channel(s)`),
      ),
    );
  }
  const names = def.classNames;
  if (names && model.classes !== names.length) {
    diagnostics.push(
      error(
        "E0111",
        `classes is ${model.classes}, but ${dataset} has ${names.length}`,
        source.at(["classes"]),
        about(`has ${names.length} classes`),
      ),
    );
  }
  if (model.classes > MAX_DATASET_CLASSES) {
    diagnostics.push(
      error(
        "E0111",
        `classes is ${model.classes}; mnistc's datasets hold at most ${MAX_DATASET_CLASSES}`,
        source.at(["classes"]),
      ),
    );
  }
  for (const field of ["mean", "std"] as const) {
    const values = model.data[field];
    const at = source.key(["data"], field);
    // Without `data.mean`/`std` the defaults are the dataset's, whose shape is checked above.
    if (at && values && values.length !== channels) {
      diagnostics.push(
        error(
          "E0111",
          `data.${field} has ${values.length} value(s) but the input has ${channels} channel(s): give one per channel`,
          source.at(["data", field]),
        ),
      );
    }
  }
  return diagnostics;
}
