// `confusion.png` of `mnistc eval --report`: the confusion matrix as a heatmap, true digit down,
// predicted across, each cell's count written in it. Color follows a symmetric log of the count,
// so the few off-diagonal errors show beside diagonals of a thousand.
import type { TopLevelSpec } from "vega-lite";
import { FONT_FAMILY, fitToCanvas, svgToPng, vegaLiteSvg } from "../render/png.js";

export const CONFUSION_SIZE = 640;

/**
 * The heatmap; `classNames` label the axes (default the class numbers), in class order. A name
 * repeated or empty would merge rows, so each is prefixed by its number unless it is the number.
 */
export function confusionSpec(
  title: string,
  confusion: number[][],
  classNames?: readonly string[],
): TopLevelSpec {
  const label = (i: number) => {
    const name = classNames?.[i];
    return name === undefined || name === String(i) ? String(i) : `${i} ${name}`;
  };
  const order = confusion.map((_, i) => label(i));
  const values = confusion.flatMap((row, truth) =>
    row.map((count, predicted) => ({ truth: label(truth), predicted: label(predicted), count })),
  );
  let max = 1;
  for (const v of values) if (v.count > max) max = v.count;
  const digits = order.every((name, i) => name === String(i));
  const cell = Math.floor(440 / Math.max(1, confusion.length));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 15 },
    background: "white",
    padding: 16,
    data: { values },
    width: cell * confusion.length,
    height: cell * confusion.length,
    encoding: {
      x: {
        field: "predicted",
        type: "ordinal",
        sort: order,
        title: "predicted class",
        axis: { labelAngle: digits ? 0 : -40 },
      },
      y: { field: "truth", type: "ordinal", sort: order, title: "true class" },
    },
    layer: [
      {
        mark: { type: "rect", stroke: "white", strokeWidth: 1 },
        encoding: {
          color: {
            field: "count",
            type: "quantitative",
            scale: { type: "symlog", scheme: "blues", domain: [0, max] },
            legend: { title: "images" },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 12 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          // Dark text on light cells, white on the dark diagonal.
          color: {
            condition: { test: `datum.count > ${Math.sqrt(max)}`, value: "white" },
            value: "#333",
          },
        },
      },
    ],
    config: { font: FONT_FAMILY, view: { stroke: null } },
  };
}

export async function renderConfusionPng(
  title: string,
  confusion: number[][],
  classNames?: readonly string[],
): Promise<Uint8Array> {
  const svg = await vegaLiteSvg(confusionSpec(title, confusion, classNames));
  return svgToPng(fitToCanvas(svg, CONFUSION_SIZE, CONFUSION_SIZE));
}
