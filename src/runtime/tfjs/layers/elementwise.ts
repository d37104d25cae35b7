// An activation tfjs has no layer for (nn.Hardswish): the op table's function as a tree of
// elementwise primitives (compiler/elementwise.ts), evaluated in tf ops; tfjs's autodiff derives
// the gradient. Its config is that tree, data a saved model.json reloads, and a new activation
// needs no runtime code.
import * as tf from "@tensorflow/tfjs";
import { type ElementwiseExpr, evaluateElementwise } from "../../../compiler/elementwise.js";
import type { Elementwise as Primitives } from "../../../compiler/grad-builder.js";

export interface ElementwiseConfig {
  name: string;
  f: ElementwiseExpr;
}

/**
 * The primitives in tf ops. Comparisons are steps, whose gradient is 0 (a Cast's would pass dy
 * through); clamp is clipByValue, whose gradient is 1 at both bounds.
 */
const TF: Primitives<tf.Tensor> = {
  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  scale: (a, k) => tf.mul(a, k),
  offset: (a, k) => tf.add(a, k),
  exp: (a) => tf.exp(a),
  sigmoid: (a) => tf.sigmoid(a),
  tanh: (a) => tf.tanh(a),
  erf: (a) => tf.erf(a),
  clamp: (a, lo, hi) => tf.clipByValue(a, lo, hi),
  greater: (a, k) => tf.step(tf.sub(a, k)),
  less: (a, k) => tf.step(tf.sub(k, a)),
};

export class Elementwise extends tf.layers.Layer {
  static className = "Elementwise";

  readonly f: ElementwiseExpr;

  constructor(config: ElementwiseConfig) {
    super({ name: config.name });
    this.f = config.f;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
    return tf.tidy(() => evaluateElementwise(TF, this.f, x));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), f: this.f };
  }
}
tf.serialization.registerClass(Elementwise, "mnistc");
