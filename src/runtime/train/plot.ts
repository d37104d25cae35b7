// `plot.png`: the seed's 2x2 grid (training loss, held-out loss / training accuracy, held-out
// accuracy vs epoch; held out is the test set, or the validation split of a `--val` run), as a
// vega-lite spec rendered by `render/png.ts`.
import type { TopLevelSpec } from "vega-lite";
import { FONT_FAMILY, fitToCanvas, svgToPng, vegaLiteSvg } from "../render/png.js";
import { type EpochMetrics, heldOut } from "./metrics.js";

/** The PNG's size. */
export const PLOT_WIDTH = 960;
export const PLOT_HEIGHT = 680;

/** Each panel's plotting area. */
const PANEL_WIDTH = 360;
const PANEL_HEIGHT = 220;
const Y_AXIS_EXTENT = 48;
const X_AXIS_EXTENT = 24;

interface Panel {
  title: string;
  field: string;
  axis: string;
  percent: boolean;
}

/** The 2x2 grid: training figures on the left, the held-out split's (test or validation) right. */
function panels(split: "val" | "test"): Panel[][] {
  const name = split === "val" ? "Validation" : "Test";
  return [
    [
      { title: "Training Loss", field: "trainLoss", axis: "loss", percent: false },
      { title: `${name} Loss`, field: "heldLoss", axis: "loss", percent: false },
    ],
    [
      { title: "Training Accuracy", field: "trainAccuracy", axis: "accuracy (%)", percent: true },
      { title: `${name} Accuracy`, field: "heldAccuracy", axis: "accuracy (%)", percent: true },
    ],
  ];
}

export function plotSpec(title: string, epochs: EpochMetrics[]): TopLevelSpec {
  const values = epochs.map((m) => {
    const held = heldOut(m);
    return {
      epoch: m.epoch,
      trainLoss: m.trainLoss,
      trainAccuracy: m.trainAccuracy * 100,
      heldLoss: held.loss,
      heldAccuracy: held.accuracy * 100,
    };
  });
  const split = epochs[0] ? heldOut(epochs[0]).split : "test";
  const lastEpoch = Math.max(...epochs.map((m) => m.epoch));
  const panel = (p: Panel) => ({
    title: p.title,
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    mark: { type: "line" as const, point: true, color: "#1f77b4" },
    encoding: {
      x: {
        field: "epoch",
        type: "quantitative" as const,
        title: "epoch",
        axis: { tickMinStep: 1, format: "d" },
        scale: { domain: [1, Math.max(2, epochs.length === 0 ? 2 : lastEpoch)], nice: false },
      },
      y: {
        field: p.field,
        type: "quantitative" as const,
        title: p.axis,
        scale: { zero: false },
        axis: { format: p.percent ? ".2f" : ".3~g" },
      },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 16 },
    data: { values },
    background: "white",
    padding: 16,
    vconcat: panels(split).map((row) => ({ hconcat: row.map(panel), spacing: 40 })),
    spacing: 30,
    config: {
      font: FONT_FAMILY,
      // Fixed extents and labels kept inside each panel: the image size never depends on the data.
      axis: { labelFlush: true, labelFontSize: 11, titleFontSize: 12 },
      axisX: { minExtent: X_AXIS_EXTENT, maxExtent: X_AXIS_EXTENT },
      axisY: { minExtent: Y_AXIS_EXTENT, maxExtent: Y_AXIS_EXTENT },
      title: { fontSize: 14 },
      view: { stroke: "#ddd" },
    },
  };
}

export function renderPlotSvg(title: string, epochs: EpochMetrics[]): Promise<string> {
  return vegaLiteSvg(plotSpec(title, epochs));
}

/** The PNG bytes of the 2x2 grid, PLOT_WIDTH x PLOT_HEIGHT. */
export async function renderPlotPng(title: string, epochs: EpochMetrics[]): Promise<Uint8Array> {
  return svgToPng(fitToCanvas(await renderPlotSvg(title, epochs), PLOT_WIDTH, PLOT_HEIGHT));
}
