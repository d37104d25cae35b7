// SVG to PNG for every picture mnistc draws (training plots, eval reports): vega-lite specs are
// rendered to SVG by vega, hand-built SVG is taken as it is, and resvg rasterizes both. resvg draws
// no text without a font file, so it gets DejaVu Sans from the `dejavu-fonts-ttf` package when
// installed (and DejaVu Sans Mono, regular and bold, which `graph.ts` draws in), else the system's fonts.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

export const FONT_FAMILY = "DejaVu Sans";

/** A bundled TTF (`DejaVuSans.ttf` by default), or undefined (then resvg loads the system's fonts). */
export function findFont(file = "DejaVuSans.ttf"): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve("dejavu-fonts-ttf/package.json")), "ttf", file);
  } catch {
    return undefined;
  }
}

export async function vegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Centers (and if need be shrinks) an SVG on a white width x height canvas: vega's own size moves
 * by a few pixels with the data, and a fixed image size keeps committed pictures comparable.
 */
export function fitToCanvas(svg: string, width: number, height: number): string {
  const inner = svg.replace(
    /^<svg([^>]*?) width="[\d.]+" height="[\d.]+"/,
    `<svg$1 x="0" y="0" width="${width}" height="${height}" preserveAspectRatio="xMidYMid meet"`,
  );
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="${width}" height="${height}" fill="white"/>${inner}</svg>`
  );
}

/** What mnistc's pictures are drawn in: DejaVu Sans, and the monospaced face of `graph.ts`. */
const FONT_FILES = ["DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"];

export interface PngOptions {
  /** Crop to what is drawn (any pixel not white) plus this many pixels of white on each side. */
  cropMargin?: number;
}

export function svgToPng(svg: string, options: PngOptions = {}): Uint8Array {
  const fonts = FONT_FILES.map((f) => findFont(f));
  const found = fonts.every((f) => f !== undefined);
  const resvg = new Resvg(svg, {
    background: "white",
    font: {
      fontFiles: found ? (fonts as string[]) : [],
      loadSystemFonts: !found,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  });
  const margin = options.cropMargin;
  if (margin === undefined) return resvg.render().asPng();
  // By the pixels: resvg's own bounding box counts invisible elements (vega's empty legend
  // backgrounds, labels at opacity 0), and background rectangles.
  const first = resvg.render();
  const ink = inkBox(first.pixels, first.width, first.height);
  // resvg crops only by its own BBox object; its fields are set to the box wanted.
  const box = resvg.getBBox();
  if (!ink || !box) return first.asPng();
  box.x = ink.x - margin;
  box.y = ink.y - margin;
  box.width = ink.width + 2 * margin;
  box.height = ink.height + 2 * margin;
  resvg.cropByBBox(box);
  return resvg.render().asPng();
}

/** The smallest rectangle holding every pixel that is not white, of RGBA pixels; none if blank. */
export function inkBox(
  rgba: Uint8Array,
  width: number,
  height: number,
): { x: number; y: number; width: number; height: number } | undefined {
  let [left, top, right, bottom] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      if (
        (rgba[i] as number) < 250 ||
        (rgba[i + 1] as number) < 250 ||
        (rgba[i + 2] as number) < 250
      ) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  if (right < 0) return undefined;
  return { x: left, y: top, width: right - left + 1, height: bottom - top + 1 };
}
