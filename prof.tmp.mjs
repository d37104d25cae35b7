import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";

const dir = process.argv[2];
const threads = Number(process.argv[3] ?? 1);
const profile = process.argv[4] === "p";
const sig = JSON.parse(readFileSync(`${dir}/step.json`, "utf8"));
const s = await ort.InferenceSession.create(`${dir}/step.onnx`, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  enableProfiling: profile,
  profileFilePrefix: "/tmp/ortprof",
});
const size = (sh) => sh.reduce((a, b) => a * b, 1);
const feeds = {};
feeds.x = new ort.Tensor(
  "float32",
  Float32Array.from({ length: size(sig.x.shape) }, () => Math.random()),
  sig.x.shape,
);
const t = new Float32Array(size(sig.target.shape));
for (let i = 0; i < sig.batch; i++) t[i * 10 + (i % 10)] = 1;
feeds.target = new ort.Tensor("float32", t, sig.target.shape);
for (const n of sig.scalars)
  feeds[n] = new ort.Tensor("float32", Float32Array.of(n === "lr" ? 0.01 : 0.9), []);
for (const m of sig.masks)
  feeds[m.name] = new ort.Tensor("float32", new Float32Array(size(m.shape)).fill(1), m.shape);
for (const e of sig.state)
  feeds[e.name] = new ort.Tensor(
    "float32",
    Float32Array.from({ length: size(e.shape) }, () =>
      e.name.endsWith("running_var") ? 1 : e.kind === "slot" ? 0 : (Math.random() - 0.5) * 0.2,
    ),
    e.shape,
  );
const times = [];
for (let i = 0; i < 8; i++) {
  const t0 = performance.now();
  await s.run(feeds);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log("threads", threads, "median ms", times[4].toFixed(1), "min", times[0].toFixed(1));
if (profile) s.endProfiling();
