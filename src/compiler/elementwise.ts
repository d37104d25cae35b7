// An elementwise function as data: the op table's `f` traced through the `Elementwise` primitives
// into a small JSON tree, and evaluated back with any implementation of them. The tfjs backend
// writes the tree into model.mjs for an activation tfjs has no layer for, and the runtime's
// Elementwise layer evaluates it in tf ops: the saved model.json holds data, not code, and reloads.
import type { Elementwise } from "./grad-builder.js";

/** `"x"` (the input), or a primitive applied: `["clamp", ["offset", "x", 3], 0, 6]`. */
export type ElementwiseExpr = "x" | [op: ElementwiseOp, ...args: (ElementwiseExpr | number)[]];
export type ElementwiseOp = keyof Elementwise<unknown>;

/** Each primitive's arguments: how many tensors, then how many numbers. */
const ARITY: { [K in ElementwiseOp]: [tensors: number, numbers: number] } = {
  add: [2, 0],
  sub: [2, 0],
  mul: [2, 0],
  scale: [1, 1],
  offset: [1, 1],
  exp: [1, 0],
  sigmoid: [1, 0],
  tanh: [1, 0],
  erf: [1, 0],
  clamp: [1, 2],
  greater: [1, 1],
  less: [1, 1],
};

/** The tree `f` builds from "x". Infinite numbers become ±1e38 bounds, which JSON can hold. */
export function traceElementwise(f: <T>(e: Elementwise<T>, x: T) => T): ElementwiseExpr {
  const finite = (k: number) => Math.max(-1e38, Math.min(1e38, k));
  const op =
    (name: ElementwiseOp) =>
    (...args: (ElementwiseExpr | number)[]): ElementwiseExpr => [
      name,
      ...args.map((a) => (typeof a === "number" ? finite(a) : a)),
    ];
  const tracer = Object.fromEntries(
    (Object.keys(ARITY) as ElementwiseOp[]).map((name) => [name, op(name)]),
  ) as unknown as Elementwise<ElementwiseExpr>;
  return f(tracer, "x");
}

/** The tree's value at `x`; throws on a tree no trace makes (a hand-edited model.json). */
export function evaluateElementwise<T>(e: Elementwise<T>, expr: unknown, x: T): T {
  if (expr === "x") return x;
  if (!Array.isArray(expr) || !Object.hasOwn(ARITY, expr[0])) {
    throw new Error(`not an elementwise expression: ${JSON.stringify(expr)}`);
  }
  const [name, ...args] = expr as [ElementwiseOp, ...unknown[]];
  const [tensors, numbers] = ARITY[name];
  if (args.length !== tensors + numbers) throw new Error(`${name}: wrong number of arguments`);
  const values = args.map((a, i) => {
    if (i < tensors) return evaluateElementwise(e, a, x);
    if (typeof a !== "number") throw new Error(`${name}: ${JSON.stringify(a)} is not a number`);
    return a;
  });
  return (e[name] as (...a: unknown[]) => T)(...values);
}
