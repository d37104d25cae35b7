// Hostile round 2, class 8: absurd numbers are refused before any work, in one line, never a
// stack trace or a hang: `--batch-size 1e20` (a typed-array RangeError, exit 7), `--threads
// 100000` (never started, growing 80 MB/s), `--seed 2^32` (trained, then refused its own
// checkpoint on --resume). Each number has a stated range (compiler/ranges.ts), the same for the
// spec's field, `mnistc train` and the emitted train.mjs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { compileSpec } from "../../src/compiler/index.js";
import { RANGES } from "../../src/compiler/ranges.js";
import { packagePath } from "../../src/paths.js";
import { optionParsers } from "../../src/runtime/train/options.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-num-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const MINIMAL = packagePath("test", "fixtures", "specs", "good", "minimal.yaml");

const run = (args: string[]) => {
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { encoding: "utf8", cwd: dir, timeout: 30_000 });
  return { ...r, seconds: (Date.now() - started) / 1000 };
};

describe("an option out of its range: one line, exit 1, nothing done", () => {
  const cases: [string[], RegExp][] = [
    [
      ["--batch-size", "1e20"],
      /'--batch-size <n>' argument '1e20' is invalid\. expected an integer 1-65,536/,
    ],
    [["--batch-size", "65537"], /expected an integer 1-65,536/],
    [
      ["--threads", "100000"],
      /'--threads <n>' argument '100000' is invalid\. expected an integer 1-256/,
    ],
    [
      ["--seed", "4294967296"],
      /'--seed <n>' argument '4294967296' is invalid\. expected an integer 0-4,294,967,295/,
    ],
    [["--seed", "-1"], /expected an integer 0-4,294,967,295/],
    [["--epochs", "1e9"], /expected an integer 1-10,000/],
    [["--train-limit", "1e20"], /expected an integer 1-2,147,483,647/],
    [["--val", "2147483648"], /expected an integer 1-2,147,483,647/],
  ];
  for (const [args, message] of cases) {
    test(`train ${args.join(" ")}`, () => {
      const out = join(dir, `out-${args.join("")}`);
      const r = run([CLI, "train", MINIMAL, "--out", out, ...args]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "a stack trace");
      assert.equal(existsSync(out), false, "nothing written");
      assert.ok(r.seconds < 10, `took ${r.seconds} s`);
    });
  }

  test("eval --test-limit 1e20", () => {
    const r = run([CLI, "eval", "--test-limit", "1e20"]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /expected an integer 1-2,147,483,647/);
  });

  test("the emitted train.mjs refuses the same", () => {
    const program = join(dir, "program");
    const c = run([CLI, "compile", MINIMAL, "-o", program]);
    assert.equal(c.status, 0, c.stderr);
    const r = run([join(program, "train.mjs"), "--batch-size", "1e20", "--out", join(dir, "p")]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /expected an integer 1-65,536/);
  });

  test("each range's ends are accepted, one past them refused", () => {
    const table: [keyof typeof RANGES, keyof typeof optionParsers][] = [
      ["epochs", "epochs"],
      ["batchSize", "batchSize"],
      ["seed", "seed"],
      ["images", "images"],
      ["threads", "threads"],
    ];
    for (const [range, parser] of table) {
      const { min, max } = RANGES[range];
      const parse = optionParsers[parser];
      assert.equal(parse(String(min)), min);
      assert.equal(parse(String(max)), max);
      assert.throws(() => parse(String(min - 1)), /expected an integer/);
      assert.throws(() => parse(String(max + 1)), /expected an integer/);
    }
  });
});

describe("a spec's number out of its range is a located error at check", () => {
  const cases: [string, RegExp][] = [
    ["seed: 4294967296", /E0105: `train\.seed` must be ≤ 4294967295/],
    ["batch_size: 1e20", /E0105: `train\.batch_size` must be ≤ 65536/],
    ["epochs: 10001", /E0105: `train\.epochs` must be ≤ 10000/],
  ];
  for (const [field, message] of cases) {
    test(field, () => {
      const file = join(dir, "spec.yaml");
      const text = `input: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers: [flatten, { linear: { out: 10 } }, log_softmax]\ntrain: { ${field} }\n`;
      writeFileSync(file, text);
      const { ir, diagnostics } = compileSpec(text, file);
      assert.equal(ir, undefined);
      assert.match(diagnostics.map((d) => `${d.code}: ${d.message}`).join("\n"), message);
    });
  }
});
