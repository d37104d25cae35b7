// `confusion.png` of `mnistc eval --report`: the confusion matrix as a heatmap, true digit down,
// predicted across, each cell's count written in it. Color follows a symmetric log of the count,
// so the few off-diagonal errors show beside diagonals of a thousand.
import type { TopLevelSpec } from "vega-lite";
import { FONT_FAMILY, svgToPng, vegaLiteSvg } from "../render/png.js";

/** The white border around the chart, in pixels: the PNG is cropped to its content. */
export const CONFUSION_MARGIN = 12;
/**
 * The most classes the heatmap is drawn for: 100 (10,000 cells, no counts written) take 2.7 s and
 * 210 MB in all; 400 took 65 s and 1.7 GB, and 1,000 crashed resvg at 4.2 GB.
 */
export const MAX_HEATMAP_CLASSES = 100;
/** Counts are written in the cells up to this many classes; beyond, they would not fit. */
const COUNTS_UP_TO = 30;

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
  // A loop, not Math.max(...counts): a spread of classes² arguments overflows the stack.
  const max = values.reduce((m, v) => Math.max(m, v.count), 1);
  const digits = order.every((name, i) => name === String(i));
  const cell = Math.max(1, Math.floor(440 / Math.max(1, confusion.length)));
  const counts = confusion.length <= COUNTS_UP_TO;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 15 },
    background: "white",
    padding: 0,
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
        mark: counts ? { type: "rect", stroke: "white", strokeWidth: 1 } : { type: "rect" },
        encoding: {
          color: {
            field: "count",
            type: "quantitative",
            scale: { type: "symlog", scheme: "blues", domain: [0, max] },
            legend: { title: "images" },
          },
        },
      },
      ...(counts
        ? [
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
            } as const,
          ]
        : []),
    ],
    config: { font: FONT_FAMILY, view: { stroke: null } },
  };
}

export async function renderConfusionPng(
  title: string,
  confusion: number[][],
  classNames?: readonly string[],
): Promise<Uint8Array> {
  // Cropped to the chart: vega's own size leaves room that its estimated text widths do not use.
  const svg = await vegaLiteSvg(confusionSpec(title, confusion, classNames));
  return svgToPng(svg, { cropMargin: CONFUSION_MARGIN });
}
