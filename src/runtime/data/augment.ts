// Random rotation as torchvision's RandomRotation(degrees, fill=0): an angle drawn uniformly in
// [-degrees, degrees], rotation counter-clockwise about the image center ((W-1)/2, (H-1)/2 in pixel
// indices, i.e. the middle of the picture), bilinear sampling, zero where the source falls outside.

/**
 * Rotates one rows×cols image by `degrees` (counter-clockwise as displayed, y pointing down) into
 * `out` at `outOffset`, as floats in the source's 0..255 range.
 */
export function rotateImage(
  src: Uint8Array,
  srcOffset: number,
  rows: number,
  cols: number,
  degrees: number,
  out: Float32Array,
  outOffset: number,
): void {
  const rad = (degrees * Math.PI) / 180;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const cx = (cols - 1) / 2;
  const cy = (rows - 1) / 2;
  const at = (x: number, y: number): number =>
    x < 0 || y < 0 || x >= cols || y >= rows ? 0 : (src[srcOffset + y * cols + x] as number);
  for (let y = 0; y < rows; y++) {
    const dy = y - cy;
    for (let x = 0; x < cols; x++) {
      const dx = x - cx;
      // Inverse mapping: the source point that lands on output pixel (x, y).
      const sx = cos * dx - sin * dy + cx;
      const sy = sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      out[outOffset + y * cols + x] =
        (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
        fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
  }
}
