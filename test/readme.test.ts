// The README cannot go stale: its CLI transcripts and its spec table are what `npm run docs:readme`
// writes from the commands and specs/ now (tools/readme.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { packagePath, packageRoot } from "../src/paths.js";
import {
  cliRunner,
  regenerate,
  shorten,
  steady,
  transcriptCommands,
  withSpecTable,
} from "../tools/readme.js";

test("a transcript shortened with `  ...` keeps its head and re-anchors each later run of lines", () => {
  const output = ["a", "b", "c", "d", "e", "f", "g"];
  assert.deepEqual(shorten(output, ["x", "y"]), output);
  assert.deepEqual(shorten(output, ["x", "y", "  ...", "e", "z"]), ["a", "b", "  ...", "e", "f"]);
  assert.deepEqual(shorten(output, ["x", "  ..."]), ["a", "  ..."]);
  assert.throws(() => shorten(output, ["x", "  ...", "q"]), /no longer has the line q/);
});

test("steady output: the package's folder hidden, the speed masked", () => {
  assert.equal(
    steady(`model ${packageRoot}/models/a.onnx\nspeed     6636 images/s (x)`),
    "model /path/to/mnistc/models/a.onnx\nspeed     N images/s (x)",
  );
});

test("regenerate replaces each command's output in console blocks only", () => {
  const readme = [
    "```sh",
    "$ npx mnistc no",
    "```",
    "```console",
    "$ npx mnistc a b",
    "old",
    "```",
  ];
  const ran: string[][] = [];
  const run = (args: string[]) => {
    ran.push(args);
    return "new\nlines";
  };
  assert.equal(
    regenerate(readme.join("\n"), run),
    [
      "```sh",
      "$ npx mnistc no",
      "```",
      "```console",
      "$ npx mnistc a b",
      "new",
      "lines",
      "```",
    ].join("\n"),
  );
  assert.deepEqual(ran, [["a", "b"]]);
});

test("README.md's transcripts and spec table are what the commands print now", () => {
  const readme = readFileSync(packagePath("README.md"), "utf8");
  assert.ok(transcriptCommands(readme).length >= 5, "the README shows transcripts");
  const { run, dispose } = cliRunner();
  try {
    const fresh = withSpecTable(regenerate(readme, run));
    assert.equal(readme, fresh, "the README is stale: run `npm run build && npm run docs:readme`");
  } finally {
    dispose();
  }
});
