// The pictures of `mnistc eval --report`: the order of the mistakes, what the grid and the heatmap
// hold. (test/onnx-cli.test.ts runs the command end to end.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PNG } from "pngjs";
import { inkBox } from "../src/runtime/render/png.js";
import {
  CONFUSION_MARGIN,
  confusionSpec,
  renderConfusionPng,
} from "../src/runtime/report/confusion.js";
import {
  byConfidence,
  type Misclassified,
  misclassifiedSvg,
  renderMisclassifiedPng,
} from "../src/runtime/report/misclassified.js";

const mistake = (index: number, confidence: number): Misclassified => ({
  index,
  label: 3,
  predicted: 5,
  confidence,
  pixels: new Uint8Array(4).fill(index),
});

describe("misclassified grid", () => {
  test("most confident first, ties by test-set index", () => {
    const order = byConfidence([
      mistake(9, 0.5),
      mistake(2, 0.9),
      mistake(4, 0.5),
      mistake(1, 0.7),
    ]);
    assert.deepEqual(
      order.map((m) => m.index),
      [2, 1, 4, 9],
    );
  });

  test("one image and one caption per mistake, in order", () => {
    const svg = misclassifiedSvg([mistake(7, 0.984), mistake(12, 0.5)], {
      rows: 2,
      cols: 2,
      title: "t & <u>",
    });
    assert.equal(svg.match(/<image /g)?.length, 2);
    assert.match(svg, /t &amp; &lt;u&gt;/);
    const captions = [...svg.matchAll(/>#(\d+)</g)].map((m) => Number(m[1]));
    assert.deepEqual(captions, [7, 12]);
    assert.match(svg, /3 → <tspan[^>]*>5<\/tspan> 98%/);
  });

  test("no mistakes: a picture that says so", () => {
    const svg = misclassifiedSvg([], { rows: 28, cols: 28, title: "none" });
    assert.match(svg, /no misclassified images/);
    const png = renderMisclassifiedPng([], { rows: 28, cols: 28, title: "none" });
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  });
});

describe("confusion heatmap", () => {
  test("one cell per (true, predicted) pair with its count", () => {
    const spec = confusionSpec("x", [
      [5, 1],
      [0, 7],
    ]) as unknown as { data: { values: { truth: number; predicted: number; count: number }[] } };
    assert.deepEqual(spec.data.values, [
      { truth: "0", predicted: "0", count: 5 },
      { truth: "0", predicted: "1", count: 1 },
      { truth: "1", predicted: "0", count: 0 },
      { truth: "1", predicted: "1", count: 7 },
    ]);
  });

  test("confusion.png is cropped to the chart: a margin of CONFUSION_MARGIN pixels each side", async () => {
    const digits = Array.from({ length: 10 }, (_, i) =>
      Array.from({ length: 10 }, (_, j) => (i === j ? 980 : (i + j) % 4)),
    );
    const names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"];
    const small = names.map((_, i) => names.map((_, j) => (i === j ? 90 : 1)));
    for (const [confusion, classNames] of [
      [digits, undefined],
      [small, names],
    ] as const) {
      const png = PNG.sync.read(Buffer.from(await renderConfusionPng("t", confusion, classNames)));
      const ink = inkBox(png.data, png.width, png.height);
      assert.ok(ink, "blank");
      const margins = [
        ink.x,
        ink.y,
        png.width - ink.x - ink.width,
        png.height - ink.y - ink.height,
      ];
      for (const m of margins) assert.ok(Math.abs(m - CONFUSION_MARGIN) <= 1, `margins ${margins}`);
      // The chart, not the margin, is most of the picture.
      assert.ok(
        ink.width * ink.height > 0.85 * png.width * png.height,
        `${png.width}x${png.height}`,
      );
    }
  });
});
