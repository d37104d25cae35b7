// Synthetic digit images for the preprocessing and predict tests, and the recipe of every file in
// test/fixtures/images (preprocess.test.ts checks the committed files still match it).
import { PNG } from "pngjs";
import type { ImageSplit } from "../src/runtime/data/split.js";

export type Segment = [number, number, number, number];

/**
 * Ink coverage 0..1 of thick strokes on a width×height canvas: 1 within `thickness/2` of a segment,
 * fading linearly over one pixel (anti-aliased edges).
 */
export function drawStrokes(width: number, height: number, segments: Segment[], thickness: number) {
  const ink = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = Infinity;
      for (const [ax, ay, bx, by] of segments) {
        const dx = bx - ax;
        const dy = by - ay;
        const t = Math.max(
          0,
          Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy || 1)),
        );
        best = Math.min(best, Math.hypot(x - ax - t * dx, y - ay - t * dy));
      }
      ink[y * width + x] = Math.max(0, Math.min(1, thickness / 2 + 0.5 - best));
    }
  }
  return ink;
}

/** A "7" off to the left of a 100x60 canvas: top bar and a diagonal stroke. */
export const SEVEN: { width: number; height: number; segments: Segment[]; thickness: number } = {
  width: 100,
  height: 60,
  segments: [
    [15, 10, 45, 10],
    [45, 10, 25, 52],
  ],
  thickness: 6,
};

export function sevenInk(): Float32Array {
  return drawStrokes(SEVEN.width, SEVEN.height, SEVEN.segments, SEVEN.thickness);
}

/** Gray 0..255 from ink coverage: dark ink on white paper, or light ink on black. */
export function toGray(ink: Float32Array, darkOnLight: boolean): Uint8Array {
  return Uint8Array.from(ink, (a) => Math.round(darkOnLight ? 255 * (1 - a) : 255 * a));
}

export type PngKind = "rgb" | "gray16" | "transparent";

/**
 * A PNG of a gray image. `transparent`: black strokes whose alpha is the ink coverage on a fully
 * transparent canvas, as a browser canvas exports a drawing.
 */
export function encodePng(
  gray: Uint8Array,
  width: number,
  height: number,
  kind: PngKind,
  ink?: Float32Array,
) {
  if (kind === "gray16") {
    const data = new Uint16Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      const v = (gray[i] ?? 0) * 257;
      data.set([v, v, v, 65535], 4 * i);
    }
    return PNG.sync.write({ width, height, data } as unknown as PNG, {
      colorType: 0,
      bitDepth: 16,
      inputHasAlpha: true,
    });
  }
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    if (kind === "transparent") data.set([0, 0, 0, Math.round(255 * (ink?.[i] ?? 0))], 4 * i);
    else data.set([gray[i] ?? 0, gray[i] ?? 0, gray[i] ?? 0, 255], 4 * i);
  }
  return PNG.sync.write({ width, height, data } as unknown as PNG, {
    colorType: kind === "transparent" ? 6 : 2,
  });
}

export function encodePgmP2(
  gray: ArrayLike<number>,
  width: number,
  height: number,
  maxval: number,
) {
  const rows: string[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(Array.from({ length: width }, (_, x) => String(gray[y * width + x] ?? 0)).join(" "));
  }
  return Buffer.from(
    `P2\n# mnistc test image\n${width} ${height}\n${maxval}\n${rows.join("\n")}\n`,
  );
}

export function encodePgmP5(
  gray: ArrayLike<number>,
  width: number,
  height: number,
  maxval: number,
) {
  const header = Buffer.from(`P5\n${width} ${height}\n${maxval}\n`);
  const wide = maxval > 255;
  const body = Buffer.alloc(width * height * (wide ? 2 : 1));
  for (let i = 0; i < width * height; i++) {
    if (wide) body.writeUInt16BE(gray[i] ?? 0, 2 * i);
    else body[i] = gray[i] ?? 0;
  }
  return Buffer.concat([header, body]);
}

/** MNIST test image `index` enlarged 3x (nearest) as dark ink on white paper. */
export function mnistOnPaper(test: ImageSplit, index: number): { gray: Uint8Array; side: number } {
  const side = test.rows * 3;
  const gray = new Uint8Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v =
        test.images[
          index * test.rows * test.cols + Math.floor(y / 3) * test.cols + Math.floor(x / 3)
        ] ?? 0;
      gray[y * side + x] = 255 - v;
    }
  }
  return { gray, side };
}

/** Every fixture file: its name and how to make its bytes. */
export function fixtureFiles(test: ImageSplit): { name: string; bytes: () => Uint8Array }[] {
  const ink = sevenInk();
  const { width, height } = SEVEN;
  const files = [
    {
      name: "seven-black-on-white.png",
      bytes: () => encodePng(toGray(ink, true), width, height, "rgb"),
    },
    {
      name: "seven-white-on-black-16bit.png",
      bytes: () => encodePng(toGray(ink, false), width, height, "gray16"),
    },
    {
      name: "seven-transparent.png",
      bytes: () => encodePng(toGray(ink, true), width, height, "transparent", ink),
    },
    { name: "seven-p2.pgm", bytes: () => encodePgmP2(toGray(ink, true), width, height, 255) },
    {
      name: "seven-p5-16bit.pgm",
      bytes: () =>
        encodePgmP5(
          Uint16Array.from(toGray(ink, false), (v) => v * 257),
          width,
          height,
          65535,
        ),
    },
    { name: "blank.png", bytes: () => encodePng(new Uint8Array(40 * 30).fill(255), 40, 30, "rgb") },
    { name: "not-an-image.txt", bytes: () => Buffer.from("this is not an image\n") },
  ];
  // The first ten MNIST test digits (labels 7 2 1 0 4 1 4 9 5 9) drawn on paper, named by label.
  for (let i = 0; i < 10; i++) {
    const { gray, side } = mnistOnPaper(test, i);
    files.push({
      name: `mnist-test-${i}-label-${test.labels[i]}.png`,
      bytes: () => encodePng(gray, side, side, "rgb"),
    });
  }
  return files;
}
