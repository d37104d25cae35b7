// `plot.png`: the seed's 2x2 grid of a run, as a vega-lite spec rendered by `render/png.ts`. Each
// panel draws the training figure and the held-out one (the test set, or the validation split of a
// `--val` run) on the same axes, told apart by the legend: loss and accuracy on top, and below the
// same on log scales (loss, and error = 100% − accuracy), where the last epochs of a 99% run differ.
// The epoch axis is integers over the run's own epochs.
import type { TopLevelSpec } from "vega-lite";
import { FONT_FAMILY, fitToCanvas, svgToPng, vegaLiteSvg } from "../render/png.js";
import { type EpochMetrics, heldOut } from "./metrics.js";

/** The PNG's size. */
export const PLOT_WIDTH = 960;
export const PLOT_HEIGHT = 680;

/** Each panel's plotting area. */
const PANEL_WIDTH = 360;
const PANEL_HEIGHT = 210;
const Y_AXIS_EXTENT = 48;
const X_AXIS_EXTENT = 24;
/** At most this many epoch ticks: every epoch up to it, else every 2nd, 5th, 10th... */
const MAX_EPOCH_TICKS = 15;
export const SERIES_COLORS = ["#1f77b4", "#ff7f0e"];

interface Panel {
  title: string;
  field: "loss" | "accuracy" | "error";
  axis: string;
  log: boolean;
}

const PANELS: Panel[][] = [
  [
    { title: "Loss", field: "loss", axis: "loss", log: false },
    { title: "Accuracy", field: "accuracy", axis: "accuracy (%)", log: false },
  ],
  [
    { title: "Loss (log scale)", field: "loss", axis: "loss", log: true },
    { title: "Error (log scale)", field: "error", axis: "error (%)", log: true },
  ],
];

/**
 * The epoch axis of a run from epoch `first` to `last`: the scale's domain and its integer ticks.
 * One epoch gets an axis around it (not a dot at the edge of an axis to epoch 2).
 */
export function epochAxis(
  first: number,
  last: number,
): { domain: [number, number]; ticks: number[] } {
  const domain: [number, number] = first === last ? [first - 0.5, last + 0.5] : [first, last];
  const steps = [1, 2, 5];
  let step = 1;
  for (let scale = 1; ; scale *= 10) {
    const fit = steps
      .map((s) => s * scale)
      .find((s) => Math.floor(last / s) - Math.ceil(first / s) + 1 <= MAX_EPOCH_TICKS);
    if (fit !== undefined) {
      step = fit;
      break;
    }
  }
  const ticks: number[] = [];
  for (let e = Math.ceil(first / step) * step; e <= last; e += step) ticks.push(e);
  return { domain, ticks };
}

export function plotSpec(title: string, epochs: EpochMetrics[]): TopLevelSpec {
  const split = epochs[0] ? heldOut(epochs[0]).split : "test";
  const series = ["training", split === "val" ? "validation" : "test"];
  const values = epochs.flatMap((m) => {
    const held = heldOut(m);
    return [
      [series[0], m.trainLoss, m.trainAccuracy],
      [series[1], held.loss, held.accuracy],
    ].map(([name, loss, accuracy]) => ({
      epoch: m.epoch,
      series: name,
      loss,
      accuracy: (accuracy as number) * 100,
      error: (1 - (accuracy as number)) * 100,
    }));
  });
  const epochNumbers = epochs.map((m) => m.epoch);
  const { domain, ticks } =
    epochs.length === 0
      ? epochAxis(1, 1)
      : epochAxis(Math.min(...epochNumbers), Math.max(...epochNumbers));
  const panel = (p: Panel) => ({
    title: p.title,
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    // A log scale cannot show 0 (a perfect epoch on a few images): such points are left out.
    ...(p.log ? { transform: [{ filter: `datum.${p.field} > 0` }] } : {}),
    mark: { type: "line" as const, point: true },
    encoding: {
      x: {
        field: "epoch",
        type: "quantitative" as const,
        title: "epoch",
        axis: { values: ticks, format: "d" },
        scale: { domain, nice: false },
      },
      y: {
        field: p.field,
        type: "quantitative" as const,
        title: p.axis,
        // The data's own range (a log scale's decades would flatten a run that moved by 1%), and
        // labels with as many digits as the ticks' spacing needs (vega's default format).
        scale: p.log ? { type: "log" as const, nice: false } : { zero: false },
        ...(p.log ? { axis: { format: "~g" } } : {}),
      },
      color: {
        field: "series",
        type: "nominal" as const,
        title: null,
        scale: { domain: series, range: SERIES_COLORS },
      },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 16 },
    data: { values },
    background: "white",
    padding: 16,
    vconcat: PANELS.map((row) => ({ hconcat: row.map(panel), spacing: 40 })),
    spacing: 30,
    config: {
      font: FONT_FAMILY,
      // Fixed extents and labels kept inside each panel: the image size never depends on the data.
      axis: { labelFlush: true, labelFontSize: 11, titleFontSize: 12 },
      axisX: { minExtent: X_AXIS_EXTENT, maxExtent: X_AXIS_EXTENT },
      axisY: { minExtent: Y_AXIS_EXTENT, maxExtent: Y_AXIS_EXTENT },
      legend: { orient: "top", labelFontSize: 12, symbolStrokeWidth: 2 },
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
