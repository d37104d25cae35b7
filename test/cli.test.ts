// Behaviour every command shares through src/cli.ts.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { packagePath } from "../src/paths.js";

const cli = packagePath("dist", "src", "cli.js");

test("a reader that closes stdout early (| head) ends the command quietly, exit 0", async () => {
  const child = spawn(process.execPath, [cli, "params", "--json"], { cwd: packagePath() });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout.once("data", () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 0);
  assert.doesNotMatch(stderr, /EPIPE|at /);
});

test("an unknown command or option is one usage error and exit 1", async () => {
  for (const args of [["nonsense"], ["params", "--bogus"]]) {
    const child = spawn(process.execPath, [cli, ...args]);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 1, args.join(" "));
    assert.match(stderr, /error: (unknown command|unknown option)/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  }
});

test("a usage error is one line with a pointer to the command's help, never the whole help", () => {
  const cases: [string[], string][] = [
    [["nonsense"], "mnistc: error: unknown command 'nonsense' (see: mnistc --help)"],
    [["train"], "mnistc: error: missing required argument 'spec' (see: mnistc train --help)"],
    [
      ["params", "--jsn"],
      "mnistc: error: unknown option '--jsn' (Did you mean --json?) (see: mnistc params --help)",
    ],
    [["train", "step4", "--epochs", "zero"], "(see: mnistc train --help)"],
    [
      ["export", "step4"],
      "mnistc: error: required option '--weights <path>' not specified (see: mnistc export --help)",
    ],
  ];
  for (const [args, line] of cases) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
    assert.equal(r.status, 1, args.join(" "));
    assert.equal(r.stdout, "", args.join(" "));
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0]?.endsWith(line), `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^mnistc: error: /);
    assert.doesNotMatch(r.stderr, /Usage:|Options:/);
  }
});

test("--help still prints the whole help, exit 0", () => {
  const r = spawnSync(process.execPath, [cli, "train", "--help"], { encoding: "utf8" });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^Usage: mnistc train \[options\] <spec>/);
});

test("a shipped spec is found by its name from any folder; a file of that name comes first", () => {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-cli-"));
  try {
    const shipped = spawnSync(process.execPath, [cli, "check", "step4", "specs/sep4k.yaml"], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(shipped.status, 0, shipped.stderr);
    assert.match(shipped.stdout, /specs[\\/]step4\.yaml: ok/);
    assert.match(shipped.stdout, /specs[\\/]sep4k\.yaml: ok/);
    writeFileSync(join(dir, "step4"), "not: [a spec");
    const local = spawnSync(process.execPath, [cli, "check", "step4"], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(local.status, 1);
    assert.match(local.stderr, /^step4:\d+:\d+: error/m);
    const none = spawnSync(process.execPath, [cli, "check", "nosuch"], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /nosuch/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
