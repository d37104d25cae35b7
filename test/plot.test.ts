import assert from "node:assert/strict";
import { test } from "node:test";
import { PNG } from "pngjs";
import type { EpochMetrics } from "../src/runtime/train/metrics.js";
import {
  PLOT_HEIGHT,
  PLOT_WIDTH,
  renderPlotPng,
  renderPlotSvg,
} from "../src/runtime/train/plot.js";

function epochs(n: number, scale = 1): EpochMetrics[] {
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    trainLoss: scale / (i + 1),
    trainAccuracy: 0.9 + i * 0.005,
    testLoss: (scale * 0.5) / (i + 1),
    testAccuracy: 0.95 + i * 0.003,
    lr: 0.01,
    seconds: 10,
  }));
}

test("the 2x2 grid has the seed's four panels", async () => {
  const svg = await renderPlotSvg("step4", epochs(3));
  for (const title of ["Training Loss", "Test Loss", "Training Accuracy", "Test Accuracy"]) {
    assert.ok(svg.includes(title), `missing panel ${title}`);
  }
});

test("plot.png has a fixed size, whatever the data, and is not blank", async () => {
  for (const [n, scale] of [
    [1, 1],
    [15, 0.00123],
    [40, 250],
  ] as const) {
    const png = PNG.sync.read(Buffer.from(await renderPlotPng("step4", epochs(n, scale))));
    assert.equal(png.width, PLOT_WIDTH);
    assert.equal(png.height, PLOT_HEIGHT);
    let ink = 0;
    let dark = 0;
    let blue = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [
        png.data[i] as number,
        png.data[i + 1] as number,
        png.data[i + 2] as number,
      ];
      if (r < 250 || g < 250 || b < 250) ink++;
      if (r < 60 && g < 60 && b < 60) dark++; // only text is this dark (axes are grey)
      if (b > 150 && r < 100) blue++; // the data lines and points
    }
    assert.ok(ink > 5000, `${n} epochs: only ${ink} non-white pixels`);
    assert.ok(dark > 1000, `${n} epochs: ${dark} text pixels: is a font available to resvg?`);
    assert.ok(blue > 50, `${n} epochs: no data drawn`);
  }
});
