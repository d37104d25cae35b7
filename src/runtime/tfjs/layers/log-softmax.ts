// log_softmax over the last axis: PyTorch's F.log_softmax(x, dim=1) on [B, classes], and on NHWC
// feature maps the last axis is PyTorch's dim 1 (channels) too. tfjs has no logSoftmax activation.
import * as tf from "@tensorflow/tfjs";

export class LogSoftmax extends tf.layers.Layer {
  static className = "LogSoftmax";

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.logSoftmax(Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs));
  }
}
tf.serialization.registerClass(LogSoftmax, "mnistc");
