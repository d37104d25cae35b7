// Hostile class 4: one clear line and exit 1 for every user mistake, never a stack trace or a hang
// (each CLI run here is given a timeout: a hang fails the test). Plus `--version`, `check -`,
// serve's warning on a non-loopback --host, and class 5: npm 12 readiness of package.json.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { packagePath } from "../../src/paths.js";
import { foreignModel } from "../onnx-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "mnistc-hostile-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const CLI = packagePath("dist", "src", "cli.js");
const MINIMAL = packagePath("test", "fixtures", "specs", "good", "minimal.yaml");

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    cwd: dir,
    timeout: 20_000,
    ...(input !== undefined ? { input } : { stdio: ["ignore", "pipe", "pipe"] }),
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", signal: r.signal };
}

/** Exit 1, no stack trace, and the message on the first error line. */
function assertMistake(r: ReturnType<typeof cli>, pattern: RegExp): void {
  const where = `stderr: ${r.stderr}`;
  assert.equal(r.signal, null, `killed (a hang?); ${where}`);
  assert.equal(r.status, 1, where);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace; ${where}`);
  assert.match(r.stderr, pattern);
}

spawnSync("mkfifo", [join(dir, "fifo.yaml")]);
spawnSync("mkfifo", [join(dir, "fifo.png")]);
writeFileSync(join(dir, "deep.yaml"), `input: ${"{a: ".repeat(5000)}1${"}".repeat(5000)}\n`);
writeFileSync(
  join(dir, "huge.yaml"),
  "input: { channels: 1, height: 28, width: 28 }\nclasses: 10\nlayers:\n  - flatten\n  - linear: { out: 100000000 }\n  - linear: { out: 10 }\n  - log_softmax\n",
);
// 30x30: its 900 classes stay under MAX_CLASSES, so the input is what is refused.
writeFileSync(join(dir, "m30.onnx"), foreignModel(["N", 1, 30, 30], ["N", 900]));
// Serve takes any image model (pictures are resized to it); a flat input is no image model.
writeFileSync(join(dir, "flat.onnx"), foreignModel(["N", 784], ["N", 784], false));

describe("one line, exit 1", () => {
  const cases: [string, string[], RegExp][] = [
    [
      "a FIFO as a spec",
      ["check", "fifo.yaml"],
      /fifo\.yaml: error E0000: cannot read spec: is a FIFO/,
    ],
    ["a device as a spec", ["check", "/dev/zero"], /cannot read spec: is a device/],
    ["a directory as a spec", ["check", "/tmp"], /is a directory, not a spec file/],
    [
      "a FIFO as an image",
      ["predict", "fifo.png"],
      /fifo\.png: is a FIFO \(named pipe\), not an image; refused/,
    ],
    ["a device as an image", ["predict", "/dev/urandom"], /is a device, not an image/],
    ["a device as a model", ["eval", "/dev/zero"], /\/dev\/zero: is a device, not an ONNX file/],
    [
      "a spec nested 5000 deep",
      ["check", "deep.yaml"],
      /E0003: the spec nests 65 levels deep here; at most 64/,
    ],
    [
      "a layer too large to allocate",
      ["check", "huge.yaml"],
      /E0302: layer 1 \(linear\): 1\.weight \[100000000, 784\]/,
    ],
    ["the same spec at train", ["train", "huge.yaml"], /E0302/],
    [
      "a bad --port",
      ["serve", "--port", "99999"],
      /argument '99999' is invalid\. expected a port number 0-65535/,
    ],
    ["a port that is not a number", ["serve", "--port", "http"], /expected a port number/],
    [
      "a model whose input does not fit (eval)",
      ["eval", "m30.onnx"],
      /t10k-images-idx3-ubyte: images are 28x28, expected 30x30/,
    ],
    [
      "a model whose input does not fit (predict --preprocess digit)",
      ["predict", "m30.onnx", "fifo.png", "--preprocess", "digit"],
      /reads 1x30x30 images; digit preprocessing makes 1x28x28 \(use --preprocess resize\)/,
    ],
    [
      "a model that reads no images (serve)",
      ["serve", "flat.onnx", "--port", "0"],
      /flat\.onnx: not an image model: expected one float32 input \[N, C, H, W\]/,
    ],
    [
      "an --out under /proc",
      ["train", MINIMAL, "--out", "/proc/mnistc"],
      /cannot create the folder/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, () => assertMistake(cli(args), pattern));
  }
});

describe("small conveniences", () => {
  test("mnistc --version", () => {
    const r = cli(["--version"]);
    assert.equal(r.status, 0);
    const { version } = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as {
      version: string;
    };
    assert.equal(r.stdout, `${version}\n`);
  });
  test("check - reads the spec from standard input", () => {
    const r = cli(["check", "-"], readFileSync(MINIMAL, "utf8"));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^stdin: ok \(7,850 trainable parameters\)/);
    const bad = cli(["check", "-"], "input: [");
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^stdin:\d+:\d+: error E0001/);
  });
  test("serve --host 0.0.0.0 warns that other machines can reach it", async () => {
    const child = spawn(process.execPath, [CLI, "serve", "--host", "0.0.0.0", "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("exit", resolve));
    assert.match(
      stderr,
      /warning: listening on 0\.0\.0\.0: the service is reachable from other machines/,
    );
  });
});

describe("npm 12 readiness", () => {
  test("both .npmrc (npm before 11.19) and allowScripts skip onnxruntime-node's download step", () => {
    const pkg = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as {
      allowScripts?: Record<string, boolean>;
    };
    // onnxruntime-node ships its CPU binaries; its script only downloads optional CUDA files.
    assert.equal(pkg.allowScripts?.["onnxruntime-node"], false);
    // npm 11.19 (here) skips a denied package's scripts; an older npm on a fresh CI machine runs
    // them, and the download step fails offline. The .npmrc line covers it, at the cost of npm's
    // "Unknown project config" warning on npm 11.19.
    assert.match(readFileSync(packagePath(".npmrc"), "utf8"), /^onnxruntime-node-install=skip$/m);
    assert.ok(
      existsSync(
        packagePath(
          "node_modules",
          "onnxruntime-node",
          "bin",
          "napi-v6",
          "linux",
          "x64",
          "onnxruntime_binding.node",
        ),
      ),
      "the CPU binaries come with the package",
    );
  });
});
