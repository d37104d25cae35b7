// Behaviour every command shares through src/cli.ts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
