// `npm run bench:hostile [-- --seconds 8 --json]`: `mnistc serve` under a hostile client. The real
// CLI serves models/step4.onnx on an ephemeral loopback port in a child process; meanwhile this
// process keeps in flight, all at once:
//   - decode bombs: 389 KB interlaced PNGs whose 2048x2048 header hides 400 MB of zeros (the case
//     that once held the event loop for 22 s), 2 at a time, back to back;
//   - the largest legitimate images: 2048x2048 PNGs (the heaviest real decode), 2 at a time;
//   - a slow client: a body trickled one byte every 100 ms, which the server must cut at its 30 s
//     request timeout;
// and samples GET /healthz every 20 ms, reporting its latency (p50, p99, max) and how the other
// requests were answered. Everything is loopback-only, bounded in time and count, and stops itself.
import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { packagePath } from "../src/paths.js";
import { rawPng, squarePng, zeroBomb } from "../test/hostile/bytes.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    json: { type: "boolean", default: false },
    "no-slow": { type: "boolean", default: false },
  },
});
const seconds = Number(args.seconds);
if (!(seconds > 0 && seconds <= 60)) {
  process.stderr.write("bench:hostile: --seconds must be 1..60\n");
  process.exit(1);
}

function startServe(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [packagePath("dist", "src", "cli.js"), "serve", "--port", "0", "--host", "127.0.0.1"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stderr?.resume();
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
    child.stdout?.once("data", (d) => resolve({ child, url: String(d).trim() }));
  });
}

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** /healthz latencies sampled every 20 ms until `until`. */
async function sampleHealth(url: string, until: number): Promise<number[]> {
  const health: number[] = [];
  while (performance.now() < until) {
    const t = performance.now();
    const r = await fetch(new URL("/healthz", url));
    await r.arrayBuffer();
    health.push(performance.now() - t);
    await new Promise((r2) => setTimeout(r2, 20));
  }
  return health;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1],
  };
}

async function main(): Promise<void> {
  const { child, url } = await startServe();
  // The baseline: the same sampling with nothing else in flight.
  const idle = summary(await sampleHealth(url, performance.now() + 2000));
  const bomb = rawPng({ width: 2048, height: 2048, interlace: 1, idat: zeroBomb(400) });
  const big = squarePng(2048);
  const deadline = performance.now() + seconds * 1000;
  const statuses = { bomb: new Map<number, number>(), big: new Map<number, number>() };
  const bombMs: number[] = [];

  async function poster(kind: "bomb" | "big", body: Buffer): Promise<void> {
    while (performance.now() < deadline) {
      const t = performance.now();
      const r = await fetch(new URL("/api/predict", url), {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: new Uint8Array(body),
      });
      await r.arrayBuffer();
      if (kind === "bomb") bombMs.push(performance.now() - t);
      statuses[kind].set(r.status, (statuses[kind].get(r.status) ?? 0) + 1);
    }
  }

  // The slow client: headers, then one byte of a 10,000-byte body every 100 ms.
  const slow = new Promise<{ lived: number; status: string }>((resolve) => {
    const { hostname, port } = new URL(url);
    const started = performance.now();
    let answer = "";
    const s = connect(Number(port), hostname, () => {
      s.write(
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10000\r\n\r\n",
      );
    });
    const drip = setInterval(() => s.writable && s.write("x"), 100);
    s.on("data", (d) => {
      answer += String(d);
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearInterval(drip);
      resolve({
        lived: (performance.now() - started) / 1000,
        status: answer.split("\r\n")[0] ?? "",
      });
    });
    // Bounded: the bench gives up on it after 45 s.
    setTimeout(() => s.destroy(), 45_000).unref();
  });

  let health: number[] = [];
  const sampler = sampleHealth(url, deadline).then((h) => {
    health = h;
  });

  await Promise.all([
    poster("bomb", bomb),
    poster("bomb", bomb),
    poster("big", big),
    poster("big", big),
    sampler,
  ]);
  const slowResult = args["no-slow"] ? undefined : await slow;
  child.kill("SIGTERM");

  const bombSorted = [...bombMs].sort((a, b) => a - b);
  const report = {
    machine: `${cpus().length} cores, ${cpus()[0]?.model ?? "?"}`,
    seconds,
    bombBytes: bomb.length,
    healthzIdle: idle,
    healthz: summary(health),
    bombs: { answers: Object.fromEntries(statuses.bomb), p50ms: quantile(bombSorted, 0.5) },
    large2048: { answers: Object.fromEntries(statuses.big) },
    slowClient: slowResult,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const f = (v: number | undefined) => (v === undefined ? "?" : v.toFixed(1));
  const lines = [
    `machine: ${report.machine}; ${seconds} s of hostile load on mnistc serve (loopback)`,
    `GET /healthz, idle: ${idle.samples} samples, p50 ${f(idle.p50)} ms, p99 ${f(idle.p99)} ms, max ${f(idle.max)} ms`,
    `GET /healthz under load: ${health.length} samples, p50 ${f(report.healthz.p50)} ms, p99 ${f(report.healthz.p99)} ms, max ${f(report.healthz.max)} ms`,
    `decode bombs (${bomb.length} bytes, 2048x2048 interlaced over 400 MiB of zeros): ${JSON.stringify(report.bombs.answers)} statuses, p50 ${f(report.bombs.p50ms)} ms each`,
    `2048x2048 PNGs: ${JSON.stringify(report.large2048.answers)} statuses`,
    slowResult
      ? `slow client (1 byte / 100 ms): cut after ${slowResult.lived.toFixed(1)} s with "${slowResult.status}"`
      : "slow client: skipped",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
