// `mnistc serve` as a user runs it: the real CLI in a child process on an ephemeral port, its URL on
// stdout, request logs on stderr, a clean exit 0 on SIGTERM/SIGINT, one-line errors for mistakes.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { test } from "node:test";
import { packagePath } from "../src/paths.js";
import { servedModelFile } from "./serve-helpers.js";

const CLI = packagePath("dist", "src", "cli.js");
const model = servedModelFile();

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

/** The URL the server prints on stdout once it listens. */
async function urlOf(r: Run): Promise<string> {
  for (let waited = 0; waited < 20_000; waited += 25) {
    const line = r.stdout().split("\n")[0] ?? "";
    if (line.endsWith("/")) return line;
    if (r.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no URL from mnistc serve; stderr:\n${r.stderr()}`);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`serve prints its URL, logs requests and exits 0 on ${signal}`, async () => {
    const r = run(["serve", model, "--port", "0"]);
    const url = await urlOf(r);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const health = await fetch(new URL("/healthz", url));
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, "ok");
    r.child.kill(signal);
    assert.equal(await r.exit, 0, r.stderr());
    assert.match(r.stderr(), /^GET \/healthz 200 \d+\.\dms$/m);
    assert.match(r.stderr(), new RegExp(`${signal}: finishing requests in flight`));
    assert.match(r.stderr(), /mnistc serve: stopped/);
  });
}

test("a missing model file is one clear error, exit 1", async () => {
  const r = run(["serve", "no-such-model.onnx", "--port", "0"]);
  assert.equal(await r.exit, 1);
  assert.equal(r.stderr(), "mnistc: error: no-such-model.onnx: no such file\n");
});

test("a port in use is one clear error, exit 1", async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const address = blocker.address();
  assert.ok(address && typeof address === "object");
  try {
    const r = run(["serve", model, "--port", String(address.port)]);
    assert.equal(await r.exit, 1);
    assert.match(
      r.stderr(),
      new RegExp(
        `^mnistc: error: cannot listen on 127\\.0\\.0\\.1:${address.port}: the address is already in use\\n$`,
      ),
    );
  } finally {
    blocker.close();
  }
});

test("a --host that is not an address of this machine is one clear error, exit 1", async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never local. Binding to it fails; no packet is sent.
  const r = run(["serve", model, "--port", "0", "--host", "192.0.2.1"]);
  assert.equal(await r.exit, 1);
  assert.equal(r.stderr(), "mnistc: error: cannot listen on 192.0.2.1:0: no such local address\n");
});
