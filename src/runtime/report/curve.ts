// The parameters-against-accuracy curve: one point per run (mean accuracy of its last epochs),
// coloured by the split it was scored on, labels kept where they do not cover each other. The one
// generator of docs/results/tuning/curve.png (`npm run docs:results`) and of a sweep's curve.png.
import { fitToCanvas, svgToPng, vegaLiteSvg } from "../render/png.js";

/** One point of the parameters-vs-accuracy curve. */
export interface CurvePoint {
  name: string;
  parameters: number;
  /** Mean of the last 3 epochs, in percent. */
  accuracy: number;
  split: "validation" | "test";
}

/** A point with its label: empty where it would cover another's. */
export type LabelledPoint = CurvePoint & { label: string };

/**
 * Labels that stay readable where runs crowd one parameter count (six sit at 7,034): full runs
 * first, then validation runs from the most accurate down, a label is drawn only if no label
 * already drawn within 15% of its parameters (a label's width) is within `gap` accuracy points;
 * two full runs that close share one label. The unlabelled points are still drawn; the table
 * names them.
 */
export function placeLabels(points: CurvePoint[], gap = 0.022): LabelledPoint[] {
  const order = [...points].sort(
    (a, b) =>
      Number(a.split === "validation") - Number(b.split === "validation") ||
      b.accuracy - a.accuracy,
  );
  const labels = new Map<CurvePoint, string>();
  for (const p of order) {
    const near = [...labels.keys()].find(
      (q) =>
        Math.abs(Math.log(q.parameters / p.parameters)) < Math.log(1.15) &&
        Math.abs(q.accuracy - p.accuracy) < gap,
    );
    if (!near) labels.set(p, p.name);
    // A full run whose label would cover another full run's joins that label.
    else if (p.split === "test" && near.split === "test")
      labels.set(near, `${labels.get(near)}, ${p.name}`);
  }
  return points.map((p) => ({ ...p, label: labels.get(p) ?? "" }));
}

export interface CurveOptions {
  /** The parameter axis (log scale); default: the points' range, widened a little. */
  domain?: [number, number];
  /** An accuracy (percent) drawn as a dashed line: the target. */
  target?: number;
  title?: string;
}

export async function curvePng(
  points: CurvePoint[],
  options: CurveOptions = {},
): Promise<Uint8Array> {
  const counts = points.map((p) => p.parameters);
  const domain = options.domain ?? [
    Math.min(...counts, Infinity) / 1.2 || 1,
    Math.max(...counts, 0) * 1.2 || 10,
  ];
  const svg = await vegaLiteSvg({
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: options.title ?? "Parameters against accuracy (mean of the last 3 epochs)",
    background: "white",
    padding: 16,
    width: 720,
    height: 420,
    data: { values: placeLabels(points) },
    encoding: {
      x: {
        field: "parameters",
        type: "quantitative",
        scale: { type: "log", domain },
        title: "trainable parameters (log scale)",
      },
      y: {
        field: "accuracy",
        type: "quantitative",
        scale: { zero: false },
        title: "accuracy, mean of the last 3 epochs (%)",
      },
      color: { field: "split", type: "nominal", title: "scored on" },
    },
    layer: [
      { mark: { type: "point", filled: true, size: 70 } },
      {
        mark: { type: "text", dx: 6, align: "left", fontSize: 10 },
        encoding: { text: { field: "label" } },
      },
      ...(options.target === undefined
        ? []
        : [
            {
              data: { values: [{ y: options.target }] },
              mark: { type: "rule" as const, strokeDash: [4, 4], color: "#888" },
              encoding: {
                y: { field: "y", type: "quantitative" as const },
                color: { value: "#888" },
              },
            },
          ]),
    ],
  });
  return svgToPng(fitToCanvas(svg, 960, 560));
}
