// Hostile round 2, class 1: no string reaches an emitted program as code. A spec file named with
// a line break and `import("fs")…` (JavaScript) or `"""` and `__import__("os")…` (Python) is
// compiled by both backends that write programs; the JavaScript is imported (what `mnistc train`
// does) and the Python parsed, and the payload never runs: it is only ever inside a literal, a
// comment or a docstring. Plus the literal helpers, round-tripped through each language.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runInNewContext } from "node:vm";
import { tritonConfig } from "../../src/formats/triton.js";
import { packagePath } from "../../src/paths.js";
import { commentText, jsStr, pyStr } from "../../src/util/literals.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-prog-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const PYTHON = "python3";
const SPEC = [
  "name: evil",
  "input: { channels: 1, height: 28, width: 28 }",
  "classes: 10",
  "layers:",
  "  - flatten",
  "  - linear: { out: 10 }",
  "  - log_softmax",
  "",
].join("\n");

// Each payload creates the file PWNED in the folder it runs in (file names hold no `/`).
const JS_PAYLOAD = 'import("fs").then((f) => f.writeFileSync("PWNED", ""));1';
const PY_PAYLOAD = '__import__("os").system("touch PWNED")';
const names: [string, string][] = [
  ["a line break, then JavaScript", `x\n${JS_PAYLOAD}`],
  ["a carriage return, then JavaScript", `x\r${JS_PAYLOAD}`],
  ["U+2028 (a JavaScript line terminator), then JavaScript", `x\u2028${JS_PAYLOAD}`],
  ['`"""`, then Python', `x"""\n${PY_PAYLOAD}\n"""`],
  ["a quote at the end", `${PY_PAYLOAD}"`],
  ["backslashes Python would read as escapes", `x\\N{BEL}\\x\\u12.yaml`],
  ["a NUL-free control mix", `a\tb\u0001\u007f\u0085\ud83d\ude00.yaml`],
];

const cli = (args: string[], cwd: string) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd, timeout: 30_000 });

/** Python source: parses, and `payload` is in no name or call, only inside string constants. */
const PY_CHECK = `
import ast, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
assert "__import__" not in names, "__import__ is called"
assert "system" not in attrs, "os.system is called"
strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
assert any(sys.argv[2] in s for s in strings), "the file name is in no string"
`;

describe("a hostile spec file name stays out of the emitted code", () => {
  names.forEach(([what, name], i) => {
    test(what, () => {
      const work = join(dir, `case${i}`);
      mkdirSync(work);
      writeFileSync(join(work, name), SPEC);
      for (const target of ["tfjs", "pytorch"]) {
        const r = cli(["compile", name, "-t", target, "-o", target], work);
        assert.equal(r.status, 0, r.stderr);
      }
      // What `mnistc train` does with model.mjs: import it (train.mjs: its syntax).
      const imported = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          'const m = await import("./tfjs/model.mjs"); console.log(m.spec.name);',
        ],
        { encoding: "utf8", cwd: work, timeout: 30_000 },
      );
      assert.equal(imported.status, 0, imported.stderr);
      assert.equal(imported.stdout.trim(), "evil");
      const checked = spawnSync(process.execPath, ["--check", join("tfjs", "train.mjs")], {
        encoding: "utf8",
        cwd: work,
      });
      assert.equal(checked.status, 0, checked.stderr);
      // The docstrings show the name escaped: the check looks for the decoded payload's words.
      const marker = name.includes("__import__") ? "__import__" : "evil";
      for (const file of ["model.py", "train.py"]) {
        const py = spawnSync(PYTHON, ["-c", PY_CHECK, join("pytorch", file), marker], {
          encoding: "utf8",
          cwd: work,
        });
        assert.equal(py.status, 0, `${file}: ${py.stderr}`);
      }
      assert.equal(existsSync(join(work, "PWNED")), false, "the payload ran");
    });
  });

  test("the Triton config's comment stays one line", () => {
    const text = tritonConfig({
      name: "evil",
      source: `x\nplatform: "tensorflow_savedmodel"`,
      input: { name: "input", dims: [1, 28, 28] },
      output: { name: "output", dims: [10] },
      maxBatchSize: 8,
      about: [],
    });
    assert.equal(text.match(/^platform:/gm)?.length, 1);
  });
});

// Strings no literal may mangle: quotes, backslashes, every control character, line terminators
// of either language, astral characters and a lone surrogate.
const HOSTILE = [
  "",
  "plain",
  'say "hi"',
  "back\\slash \\N{BEL} \\x \\u \\",
  '"""',
  "'''",
  Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)).join(""),
  "\u007f\u0080\u0085\u00a0\u2028\u2029\ufeff",
  "\ud83d\ude00 astral",
  "lone \ud800 surrogate",
  "*/ --> <!-- $\u{7b}x} `tick`",
];

describe("pyStr: a Python literal of any string", () => {
  const table: [string, string][] = [
    ["plain", '"plain"'],
    ['a"b', '"a\\"b"'],
    ["a\\b", '"a\\\\b"'],
    ["line\nbreak\r\t", '"line\\nbreak\\r\\t"'],
    ["\u0000\u007f\u00e9", '"\\x00\\x7f\\xe9"'],
    ["\u2028", '"\\u2028"'],
    ["\ud83d\ude00", '"\\U0001f600"'],
    ["\ud800", '"\\ud800"'],
  ];
  for (const [input, expected] of table) {
    test(`${JSON.stringify(input)} -> ${expected}`, () => assert.equal(pyStr(input), expected));
  }

  test("Python reads back every hostile string, and the literals are printable ASCII", () => {
    for (const s of HOSTILE) assert.match(pyStr(s), /^[\x20-\x7e]*$/);
    const program = `import ast, json, sys\nfor line in sys.stdin.read().splitlines():\n    print(json.dumps(ast.literal_eval(line)))\n`;
    const r = spawnSync(PYTHON, ["-c", program], {
      input: HOSTILE.map(pyStr).join("\n"),
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
      HOSTILE,
    );
  });
});

describe("jsStr and commentText", () => {
  test("JavaScript reads back every hostile string; no raw line terminator", () => {
    for (const s of HOSTILE) {
      const literal = jsStr(s);
      assert.doesNotMatch(literal, /[\n\r\u2028\u2029]/);
      assert.equal(runInNewContext(literal), s);
    }
  });

  test("comment text is itself when plain, else printable ASCII", () => {
    assert.equal(commentText("lenet-5_v2.yaml"), "lenet-5_v2.yaml");
    assert.equal(commentText("my model.yaml"), "my model.yaml");
    for (const s of HOSTILE.slice(2)) assert.match(commentText(s), /^[\x20-\x7e]*$/);
  });

  test("in a // comment, a # comment and a docstring, it stays there", () => {
    const js = HOSTILE.map((s) => `// ${commentText(s)}.`).join("\n");
    assert.equal(runInNewContext(`${js}\n42`), 42);
    const py = [
      ...HOSTILE.map((s) => `# ${commentText(s)}.`),
      ...HOSTILE.map((s) => `"""from ${commentText(s)}."""`),
      ...HOSTILE.map((s) => `"""${commentText(s)} (${commentText(s)})."""`),
    ].join("\n");
    const file = join(dir, "comments.py");
    writeFileSync(file, py);
    const r = spawnSync(PYTHON, ["-c", PY_CHECK, file, "from"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(file, "utf8").length > 0);
  });
});
