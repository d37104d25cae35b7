/** Number of values in a tensor of this shape (1 for a scalar's []). */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
