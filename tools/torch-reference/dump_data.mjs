// Loads a dataset through mnistc's own loader table (`loadDataset`, what `train`, `eval` and
// `data` call) and writes its splits as raw bytes, so that check.py can compare them with the
// tensors torchvision gives for the same files.
//
//   node tools/torch-reference/dump_data.mjs REQUEST.json OUT
//
// REQUEST.json: {"data": {"dataset": "folder", "path": DIR, "mean": [...], "std": [...]},
//                "input": {"channels": C, "height": H, "width": W}, "classes": N (optional)}
// (a DataIR and InputIR as the compiler makes them; without mean/std the loader computes them).
// Writes OUT.train.u8 and OUT.test.u8 (count·C·H·W bytes, NCHW, as the loader holds them),
// OUT.train.labels.u8 and OUT.test.labels.u8 (one byte per image), and OUT.json:
// {"classNames": [...], "mean": [...], "std": [...], "computed": bool, "testNote": ...,
//  "train": {"count", "channels", "rows", "cols"}, "test": {...}}.
import { readFileSync, writeFileSync } from "node:fs";
import { loadDataset } from "../../dist/src/runtime/data/sources.js";

const [requestFile, out] = process.argv.slice(2);
if (!requestFile || !out) {
  process.stderr.write("usage: node dump_data.mjs REQUEST.json OUT\n");
  process.exit(2);
}
const request = JSON.parse(readFileSync(requestFile, "utf8"));
const data = { preprocess: "resize", ...request.data };
const loaded = loadDataset(
  data,
  {
    input: request.input,
    ...(request.classes !== undefined ? { classes: request.classes } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  },
  requestFile,
);
const shape = ({ count, channels, rows, cols }) => ({ count, channels, rows, cols });
for (const name of ["train", "test"]) {
  const split = loaded[name];
  writeFileSync(
    `${out}.${name}.u8`,
    split.images.subarray(0, split.count * split.channels * split.rows * split.cols),
  );
  writeFileSync(`${out}.${name}.labels.u8`, split.labels.subarray(0, split.count));
}
writeFileSync(
  `${out}.json`,
  JSON.stringify({
    classNames: loaded.classNames,
    mean: loaded.mean,
    std: loaded.std,
    computed: loaded.computed,
    testNote: loaded.testNote ?? null,
    train: shape(loaded.train),
    test: shape(loaded.test),
  }),
);
