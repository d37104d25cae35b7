import assert from "node:assert/strict";
import { test } from "node:test";
import { BACKENDS } from "../src/backends/index.js";

test("backends are listed once each", () => {
  const names = BACKENDS.map((b) => b.name);
  assert.deepEqual(names, ["tfjs", "onnx", "onnx-train", "pytorch"]);
});
