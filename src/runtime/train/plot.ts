// `plot.png`: the seed's 2x2 grid (training loss, test loss / training accuracy, test accuracy vs
// epoch), as a vega-lite spec rendered to SVG by vega and rasterized by resvg. resvg draws no text
// without a font file, so it gets DejaVu Sans from the `dejavu-fonts-ttf` package when installed,
// else the system's fonts.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { EpochMetrics } from "./metrics.js";

export const PLOT_FONT_FAMILY = "DejaVu Sans";

/** The PNG's size: vega's own size moves by a few pixels with the data, so it is fitted into this. */
export const PLOT_WIDTH = 960;
export const PLOT_HEIGHT = 680;

/** Each panel's plotting area. */
const PANEL_WIDTH = 360;
const PANEL_HEIGHT = 220;
const Y_AXIS_EXTENT = 48;
const X_AXIS_EXTENT = 24;

/** A bundled TTF, or undefined (then resvg loads the system's fonts). */
export function findPlotFont(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve("dejavu-fonts-ttf/package.json")), "ttf", "DejaVuSans.ttf");
  } catch {
    return undefined;
  }
}

interface Panel {
  title: string;
  field: keyof EpochMetrics;
  axis: string;
  percent: boolean;
}

const PANELS: Panel[][] = [
  [
    { title: "Training Loss", field: "trainLoss", axis: "loss", percent: false },
    { title: "Test Loss", field: "testLoss", axis: "loss", percent: false },
  ],
  [
    { title: "Training Accuracy", field: "trainAccuracy", axis: "accuracy (%)", percent: true },
    { title: "Test Accuracy", field: "testAccuracy", axis: "accuracy (%)", percent: true },
  ],
];

export function plotSpec(title: string, epochs: EpochMetrics[]): TopLevelSpec {
  const values = epochs.map((m) => ({
    ...m,
    trainAccuracy: m.trainAccuracy * 100,
    testAccuracy: m.testAccuracy * 100,
  }));
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
    vconcat: PANELS.map((row) => ({ hconcat: row.map(panel), spacing: 40 })),
    spacing: 30,
    config: {
      font: PLOT_FONT_FAMILY,
      // Fixed extents and labels kept inside each panel: the image size never depends on the data.
      axis: { labelFlush: true, labelFontSize: 11, titleFontSize: 12 },
      axisX: { minExtent: X_AXIS_EXTENT, maxExtent: X_AXIS_EXTENT },
      axisY: { minExtent: Y_AXIS_EXTENT, maxExtent: Y_AXIS_EXTENT },
      title: { fontSize: 14 },
      view: { stroke: "#ddd" },
    },
  };
}

export async function renderPlotSvg(title: string, epochs: EpochMetrics[]): Promise<string> {
  const { spec } = compile(plotSpec(title, epochs));
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Centers (and if need be shrinks) vega's SVG on a white PLOT_WIDTH x PLOT_HEIGHT canvas. */
function fitToCanvas(svg: string): string {
  const inner = svg.replace(
    /^<svg([^>]*?) width="[\d.]+" height="[\d.]+"/,
    `<svg$1 x="0" y="0" width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" preserveAspectRatio="xMidYMid meet"`,
  );
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}">` +
    `<rect width="${PLOT_WIDTH}" height="${PLOT_HEIGHT}" fill="white"/>${inner}</svg>`
  );
}

/** The PNG bytes of the 2x2 grid, PLOT_WIDTH x PLOT_HEIGHT. */
export async function renderPlotPng(title: string, epochs: EpochMetrics[]): Promise<Uint8Array> {
  const svg = fitToCanvas(await renderPlotSvg(title, epochs));
  const font = findPlotFont();
  const resvg = new Resvg(svg, {
    font: {
      fontFiles: font ? [font] : [],
      loadSystemFonts: font === undefined,
      defaultFontFamily: PLOT_FONT_FAMILY,
      sansSerifFamily: PLOT_FONT_FAMILY,
    },
  });
  return resvg.render().asPng();
}
