// Model-level checks once shapes are known: the head must give log-probabilities over the classes
// (training uses NLL loss, so log_softmax comes last and the output is [classes]), and the spec must
// fit its dataset (MNIST: 1x28x28 images, 10 classes, one mean/std per channel).
import { error } from "./codes.js";
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

export function checkDataset(model: Lowered, source: SourceMap): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const dataAt = source.key([], "data");
  const note: Note[] = [
    {
      message: "the mnist dataset has 1x28x28 images in 10 classes",
      ...(dataAt ? { span: dataAt } : {}),
    },
  ];
  const { channels, height, width } = model.input;
  if (model.data.dataset === "mnist" && (channels !== 1 || height !== 28 || width !== 28)) {
    diagnostics.push(
      error(
        "E0111",
        `input is ${channels}x${height}x${width}, but mnist images are 1x28x28`,
        source.at(["input"]),
        note,
      ),
    );
  }
  if (model.data.dataset === "mnist" && model.classes !== 10) {
    diagnostics.push(
      error("E0111", `classes is ${model.classes}, but mnist has 10`, source.at(["classes"]), note),
    );
  }
  for (const field of ["mean", "std"] as const) {
    const values = model.data[field];
    const at = source.key(["data"], field);
    // Without `data.mean`/`std` the defaults are mnist's, and a non-mnist input is reported above.
    if (at && values.length !== channels) {
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
