// `misclassified.png` of `mnistc eval --report`: a grid of the test digits the model gets wrong,
// most confident mistakes first, each with its test-set index, true and predicted digit and the
// probability the model gave its prediction. Hand-built SVG (vega-lite has no grid of raster
// images): each digit is an embedded 1:1 PNG that resvg scales up without smoothing.
import { PNG } from "pngjs";
import { escapeXml } from "../../util/text.js";
import { FONT_FAMILY, svgToPng } from "../render/png.js";

export interface Misclassified {
  /** Index in the test set. */
  index: number;
  label: number;
  predicted: number;
  /** The model's probability of `predicted`, in [0, 1]. */
  confidence: number;
  /** channels·rows·cols bytes, NCHW (one channel: 0 background, 255 ink, MNIST's convention). */
  pixels: Uint8Array;
}

export interface GridOptions {
  rows: number;
  cols: number;
  /** 1 (grey, shown dark on light as ink) or 3 (RGB, shown as it is); default 1. */
  channels?: number;
  /** Shown instead of the class numbers. */
  classNames?: readonly string[];
  title: string;
  /** Digits per row of the grid. */
  perRow?: number;
  /** Pixels per image pixel. */
  zoom?: number;
}

/** The most confident mistakes first; the same order for the same model and data. */
export function byConfidence(items: Misclassified[]): Misclassified[] {
  return [...items].sort((a, b) => b.confidence - a.confidence || a.index - b.index);
}

/** A grayscale image as a PNG data URI, dark ink on white as a digit is read on paper. */
function imageDataUri(pixels: Uint8Array, rows: number, cols: number, channels: number): string {
  const plane = rows * cols;
  if (channels === 3) {
    const png = new PNG({ width: cols, height: rows });
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) png.data[4 * i + c] = pixels[c * plane + i] ?? 0;
      png.data[4 * i + 3] = 255;
    }
    return `data:image/png;base64,${PNG.sync.write(png).toString("base64")}`;
  }
  const png = new PNG({ width: cols, height: rows, colorType: 0, inputColorType: 0 });
  for (let i = 0; i < plane; i++) png.data[i] = 255 - (pixels[i] ?? 0);
  const bytes = PNG.sync.write(png, { colorType: 0, inputColorType: 0 });
  return `data:image/png;base64,${bytes.toString("base64")}`;
}

/** One picture of a grid and the two lines under it (already plain text; escaped here). */
export interface GridCell {
  pixels: Uint8Array;
  caption: string;
  /** Drawn bold in red after the caption (a wrong prediction), then `after`. */
  emphasis?: string;
  after?: string;
  note?: string;
}

/** A grid of labelled images (`--report`'s mistakes, `mnistc data --grid`'s samples). */
export function imageGridSvg(
  cells: GridCell[],
  opts: GridOptions & { empty?: string; captionChars?: number },
): string {
  const perRow = opts.perRow ?? 10;
  const zoom = opts.zoom ?? 3;
  const imageW = opts.cols * zoom;
  const imageH = opts.rows * zoom;
  // About 7 px a character of the 13 px caption.
  const cellW = Math.max(imageW, 92, (opts.captionChars ?? 0) * 7) + 12;
  const cellH = imageH + 44;
  const top = 48;
  const gridRows = Math.max(1, Math.ceil(cells.length / perRow));
  const width = Math.max(perRow * cellW, 480) + 24;
  const height = top + gridRows * cellH + 12;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="12" y="28" font-size="16">${escapeXml(opts.title)}</text>`,
  ];
  if (cells.length === 0 && opts.empty) {
    parts.push(`<text x="12" y="${top + 24}" font-size="13">${escapeXml(opts.empty)}</text>`);
  }
  cells.forEach((cell, i) => {
    const x = 12 + (i % perRow) * cellW;
    const y = top + Math.floor(i / perRow) * cellH;
    const center = x + (cellW - 12) / 2;
    const href = imageDataUri(cell.pixels, opts.rows, opts.cols, opts.channels ?? 1);
    const emphasis =
      cell.emphasis === undefined
        ? ""
        : ` <tspan fill="#c62828" font-weight="bold">${escapeXml(cell.emphasis)}</tspan>${cell.after ? ` ${escapeXml(cell.after)}` : ""}`;
    parts.push(
      `<image x="${center - imageW / 2}" y="${y}" width="${imageW}" height="${imageH}" image-rendering="optimizeSpeed" href="${href}"/>`,
      `<rect x="${center - imageW / 2}" y="${y}" width="${imageW}" height="${imageH}" fill="none" stroke="#ccc"/>`,
      `<text x="${center}" y="${y + imageH + 16}" font-size="13" text-anchor="middle">${escapeXml(cell.caption)}${emphasis}</text>`,
      ...(cell.note
        ? [
            `<text x="${center}" y="${y + imageH + 32}" font-size="11" fill="#777" text-anchor="middle">${escapeXml(cell.note)}</text>`,
          ]
        : []),
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** A class name cut to 16 characters, so a cell stays readable. */
export function shortName(names: readonly string[] | undefined, c: number): string {
  const text = names?.[c] ?? String(c);
  return text.length > 16 ? `${text.slice(0, 15)}…` : text;
}

export function misclassifiedSvg(items: Misclassified[], opts: GridOptions): string {
  let longest = 1;
  for (const n of opts.classNames ?? []) longest = Math.max(longest, Math.min(n.length, 16));
  const name = (c: number) => shortName(opts.classNames, c);
  return imageGridSvg(
    items.map((item) => ({
      pixels: item.pixels,
      // "true → predicted 97%": the prediction in red.
      caption: `${name(item.label)} →`,
      emphasis: name(item.predicted),
      after: `${(item.confidence * 100).toFixed(0)}%`,
      note: `#${item.index}`,
    })),
    { ...opts, empty: "no misclassified images", captionChars: 2 * longest + 8 },
  );
}

export function renderMisclassifiedPng(items: Misclassified[], opts: GridOptions): Uint8Array {
  return svgToPng(misclassifiedSvg(items, opts));
}
