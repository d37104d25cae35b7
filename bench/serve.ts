// `npm run bench:serve [-- --duration 10 --model FILE --json]`: throughput and latency of
// `mnistc serve`'s POST /api/predict. The real CLI serves on an ephemeral loopback port in a child
// process (so the load generator does not share its event loop); autocannon posts a real MNIST
// test digit as JSON with 1 and then 32 concurrent connections, each for a bounded time.
// Without a trained models/step4.onnx, step4 with seeded weights is compiled: speed is the same.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { findBackend } from "../src/backends/index.js";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath } from "../src/paths.js";
import { loadMnist } from "../src/runtime/data/mnist.js";
import { defaultModelFile } from "../src/runtime/inference/onnx-model.js";

/** The part of autocannon's API used here (the package ships no types). */
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}
type Autocannon = (options: {
  url: string;
  method: "POST";
  headers: Record<string, string>;
  body: string;
  connections: number;
  duration: number;
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

const CONNECTIONS = [1, 32];

const { values: args } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    model: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const duration = Number(args.duration);
if (!(duration > 0 && duration <= 60)) {
  process.stderr.write("bench:serve: --duration must be 1..60 seconds\n");
  process.exit(1);
}

function modelFile(tmp: string): { file: string; weights: string } {
  if (args.model) return { file: args.model, weights: "as given" };
  if (existsSync(defaultModelFile())) return { file: defaultModelFile(), weights: "trained" };
  const spec = packagePath("specs", "step4.yaml");
  const { ir } = compileSpec(readFileSync(spec, "utf8"), spec);
  const contents = ir && findBackend("onnx")?.emit(ir, {}).files[0]?.contents;
  if (!(contents instanceof Uint8Array)) throw new Error("specs/step4.yaml did not compile");
  const file = join(tmp, "step4-seeded.onnx");
  writeFileSync(file, contents);
  return { file, weights: "seeded init: no trained model yet, same speed" };
}

/** Starts `mnistc serve` and resolves with its URL (the first line it prints). */
function startServe(file: string): Promise<{ child: ChildProcess; url: string }> {
  const cli = packagePath("dist", "src", "cli.js");
  // Request logs go to /dev/null: written (as in real use) but not echoed into the bench output.
  const child = spawn(process.execPath, [cli, "serve", file, "--port", "0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0] ?? "";
      if (out.includes("\n")) resolve({ child, url: line });
    });
    child.on("exit", (code) => reject(new Error(`mnistc serve exited with ${code}`)));
  });
}

const tmp = mkdtempSync(join(tmpdir(), "mnistc-bench-serve-"));
const model = modelFile(tmp);
const test = loadMnist({ testLimit: 1, trainLimit: 1 }).test;
const body = JSON.stringify({ pixels: Array.from(test.images.subarray(0, 784)) });
const { child, url } = await startServe(model.file);
if (!url.startsWith("http://127.0.0.1:")) throw new Error(`not a loopback URL: ${url}`);

const runs = [];
try {
  // A short warm-up so the first run does not pay for ORT's first allocations.
  await autocannon({ ...request(), connections: 1, duration: 1 });
  for (const connections of CONNECTIONS) {
    process.stderr.write(`bench:serve: ${connections} connection(s), ${duration} s...\n`);
    const r = await autocannon({ ...request(), connections, duration });
    runs.push({
      connections,
      requestsPerSecond: r.requests.average,
      requests: r.requests.total,
      // autocannon records whole milliseconds; the mean comes from Little's law instead (each
      // connection has exactly one request outstanding): connections / throughput.
      latencyMs: {
        p50: r.latency.p50,
        p99: r.latency.p99,
        mean: Math.round((connections / r.requests.average) * 1e5) / 100,
        max: r.latency.max,
      },
      errors: r.errors + r.timeouts + r.non2xx,
    });
  }
} finally {
  child.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}

function request() {
  return {
    url: new URL("/api/predict", url).href,
    method: "POST" as const,
    headers: { "Content-Type": "application/json" },
    body,
  };
}

const report = {
  model: model.file,
  weights: model.weights,
  endpoint: "POST /api/predict (JSON, one MNIST test digit)",
  durationSeconds: duration,
  cpus: cpus().length,
  node: process.version,
  runs,
};
if (args.json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  process.stdout.write(
    `mnistc serve: ${report.endpoint}\nmodel ${model.file} (${model.weights}); ${duration} s per run, ${report.cpus} CPUs, node ${process.version}\n\n`,
  );
  // autocannon measures p50/p99 in whole milliseconds: 0 means under 1 ms.
  process.stdout.write("connections   req/s   p50 ms   p99 ms   mean ms   errors\n");
  for (const r of runs) {
    process.stdout.write(
      `${String(r.connections).padStart(11)}   ${r.requestsPerSecond.toFixed(0).padStart(5)}   ${String(r.latencyMs.p50).padStart(6)}   ${String(r.latencyMs.p99).padStart(6)}   ${r.latencyMs.mean.toFixed(2).padStart(7)}   ${String(r.errors).padStart(6)}\n`,
    );
  }
}
