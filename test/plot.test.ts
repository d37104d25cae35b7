import assert from "node:assert/strict";
import { test } from "node:test";
import { PNG } from "pngjs";
import type { EpochMetrics } from "../src/runtime/train/metrics.js";
import {
  epochAxis,
  PLOT_HEIGHT,
  PLOT_WIDTH,
  plotSpec,
  renderPlotPng,
  renderPlotSvg,
  SERIES_COLORS,
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

test("the 2x2 grid: training and test on the same axes in every panel, with a legend", async () => {
  const svg = await renderPlotSvg("step4", epochs(3));
  for (const title of ["Loss", "Accuracy", "Loss (log scale)", "Error (log scale)"]) {
    assert.ok(svg.includes(`>${title}</text>`), `missing panel ${title}`);
  }
  assert.match(svg, /aria-label="Symbol legend[^"]*"/);
  assert.match(svg, />training<\/text>/);
  assert.match(svg, />test<\/text>/);
  // Each of the four panels draws one line per series, in the legend's colours.
  const lines = [
    ...svg.matchAll(
      /aria-label="epoch: 1; ([^:]+): [^;]*; series: (\w+)"[^>]*stroke="(#[0-9a-f]{6})"/g,
    ),
  ].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
  assert.deepEqual(lines, [
    `loss training ${SERIES_COLORS[0]}`,
    `loss test ${SERIES_COLORS[1]}`,
    `accuracy (%) training ${SERIES_COLORS[0]}`,
    `accuracy (%) test ${SERIES_COLORS[1]}`,
    `loss training ${SERIES_COLORS[0]}`,
    `loss test ${SERIES_COLORS[1]}`,
    `error (%) training ${SERIES_COLORS[0]}`,
    `error (%) test ${SERIES_COLORS[1]}`,
  ]);
});

test("a --val run says validation", async () => {
  const val = epochs(2).map(({ testLoss, testAccuracy, ...m }) => ({
    ...m,
    valLoss: testLoss,
    valAccuracy: testAccuracy,
  }));
  const svg = await renderPlotSvg("step4", val);
  assert.match(svg, />validation<\/text>/);
  assert.doesNotMatch(svg, />test<\/text>/);
});

test("the epoch axis: integer ticks over the run's own epochs", () => {
  // One epoch is a point in the middle of an axis that shows only epoch 1.
  assert.deepEqual(epochAxis(1, 1), { domain: [0.5, 1.5], ticks: [1] });
  assert.deepEqual(epochAxis(1, 2), { domain: [1, 2], ticks: [1, 2] });
  assert.deepEqual(
    epochAxis(1, 15).ticks,
    Array.from({ length: 15 }, (_, i) => i + 1),
  );
  assert.deepEqual(epochAxis(1, 20).ticks, [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  assert.deepEqual(epochAxis(1, 40).ticks, [5, 10, 15, 20, 25, 30, 35, 40]);
  assert.deepEqual(epochAxis(1, 100).ticks, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  // A resumed run's metrics start later.
  assert.deepEqual(epochAxis(6, 9), { domain: [6, 9], ticks: [6, 7, 8, 9] });
  for (const n of [1, 15]) {
    const spec = plotSpec("step4", epochs(n)) as unknown as {
      vconcat: { hconcat: { encoding: { x: { scale: object; axis: object } } }[] }[];
    };
    for (const row of spec.vconcat)
      for (const panel of row.hconcat) {
        assert.deepEqual(panel.encoding.x.scale, { domain: epochAxis(1, n).domain, nice: false });
        assert.deepEqual(panel.encoding.x.axis, { values: epochAxis(1, n).ticks, format: "d" });
      }
  }
});

/** The tick labels of each panel's epoch axis, as rendered. */
function epochTicks(svg: string): string[][] {
  return svg
    .split('aria-label="X-axis')
    .slice(1)
    .map((axis) => {
      const labels = axis.slice(0, axis.indexOf("role-axis-title"));
      return [...labels.matchAll(/>(\d+)<\/text>/g)].map((m) => m[1] as string);
    });
}

test("the rendered epoch axes: 1 alone for a 1-epoch run, 1 to 15 for 15", async () => {
  assert.deepEqual(epochTicks(await renderPlotSvg("step4", epochs(1))), Array(4).fill(["1"]));
  const fifteen = Array.from({ length: 15 }, (_, i) => String(i + 1));
  assert.deepEqual(epochTicks(await renderPlotSvg("step4", epochs(15))), Array(4).fill(fifteen));
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
      if (b > 150 && r < 100) blue++; // the training lines and points
    }
    assert.ok(ink > 5000, `${n} epochs: only ${ink} non-white pixels`);
    assert.ok(dark > 1000, `${n} epochs: ${dark} text pixels: is a font available to resvg?`);
    assert.ok(blue > 50, `${n} epochs: no data drawn`);
  }
});
