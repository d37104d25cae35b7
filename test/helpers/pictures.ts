// Pictures the dataset tests make: flat colours with seeded noise (no two alike), written as an
// ImageFolder tree of PNGs and JPEGs. A tiny net tells the colours apart in a few steps.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { Rng } from "../../src/util/rng.js";

export type Rgb = [number, number, number];

export const COLORS: Record<string, Rgb> = {
  "blue sky": [40, 60, 220],
  grass: [40, 200, 60],
  tomato: [230, 50, 40],
};

/** side×side RGBA bytes of `color`, each channel moved by up to ±`noise`, clamped to 0..255. */
export function picture(side: number, color: Rgb, rng: Rng, noise = 30): Buffer {
  const rgba = Buffer.alloc(4 * side * side);
  for (let i = 0; i < side * side; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (color[c] as number) + Math.round(rng.uniform(-noise, noise));
      rgba[4 * i + c] = Math.max(0, Math.min(255, v));
    }
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

export function png(side: number, rgba: Buffer): Buffer {
  const image = new PNG({ width: side, height: side });
  rgba.copy(image.data);
  return PNG.sync.write(image);
}

/**
 * ROOT/<class>/NN.png for each of `colors`, `perClass` pictures of 12, 16 and 20 pixels a side;
 * every third a JPEG when `jpegs` is set.
 */
export function colorFolder(
  root: string,
  {
    perClass,
    jpegs = false,
    colors = COLORS,
    noise = 30,
  }: {
    perClass: number;
    jpegs?: boolean;
    colors?: Record<string, Rgb>;
    noise?: number;
  },
): void {
  const rng = new Rng(3);
  for (const [name, color] of Object.entries(colors)) {
    mkdirSync(join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const side = 12 + (i % 3) * 4;
      const rgba = picture(side, color, rng, noise);
      const file = join(root, name, String(i).padStart(2, "0"));
      if (jpegs && i % 3 === 0)
        writeFileSync(
          `${file}.jpg`,
          jpeg.encode({ width: side, height: side, data: rgba }, 90).data,
        );
      else writeFileSync(`${file}.png`, png(side, rgba));
    }
  }
}
