// `npm run bench:hostile [-- --seconds 8 --json]`: `mnistc serve` under a hostile client. The real
// CLI serves models/step4.onnx on an ephemeral loopback port in a child process; meanwhile this
// process keeps in flight, all at once:
//   - decode bombs: 389 KB interlaced PNGs whose 2048x2048 header hides 400 MB of zeros (the case
//     that once held the event loop for 22 s), 2 at a time, back to back;
//   - the largest legitimate images: 2048x2048 PNGs (the heaviest real decode), 2 at a time;
//   - a slow client: a body trickled one byte every 100 ms, which the server must cut at its 30 s
//     request timeout;
// and samples GET /healthz every 20 ms, reporting its latency (p50, p99, max) and how the other
// requests were answered. Then two more phases of the same length, each reporting /healthz's
// latency and the server's peak RSS (VmRSS of its process, sampled every 50 ms):
//   - the slow-body flood: `--flood` connections (default 1,500) each declaring a body just under
//     1 MiB and trickling 4 KiB of it every 200 ms (the case that took the server to 1.7 GB);
//   - tall PNGs: 1x4,194,304 pixels in 12 KB (inside the pixel limit; 2.2 s and 770 MB a request
//     before the side limit), 2 at a time, back to back.
// Everything is loopback-only, bounded in time and count, and stops itself.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { deflateSync } from "node:zlib";
import { packagePath } from "../src/paths.js";
import { rawPng, squarePng, zeroBomb } from "../test/hostile/bytes.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    json: { type: "boolean", default: false },
    "no-slow": { type: "boolean", default: false },
    flood: { type: "string", default: "1500" },
  },
});
const floodCount = Number(args.flood);
if (!(Number.isInteger(floodCount) && floodCount >= 0 && floodCount <= 5000)) {
  process.stderr.write("bench:hostile: --flood must be 0..5000\n");
  process.exit(1);
}
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

/** /healthz latencies sampled every 20 ms until `until` (Infinity: failed or not 200). */
async function sampleHealth(url: string, until: number): Promise<number[]> {
  const health: number[] = [];
  while (performance.now() < until) {
    const t = performance.now();
    try {
      const r = await fetch(new URL("/healthz", url));
      await r.arrayBuffer();
      // A refusal counts as a failed sample, as a connection that fails does.
      health.push(r.status === 200 ? performance.now() - t : Number.POSITIVE_INFINITY);
    } catch {
      health.push(Number.POSITIVE_INFINITY);
    }
    await new Promise((r2) => setTimeout(r2, 20));
  }
  return health;
}

/** The server's resident memory now (MB), from /proc (Linux). */
function rssMb(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** The largest RSS sampled every 50 ms until `until`. */
async function peakRss(pid: number | undefined, until: number): Promise<number> {
  let peak = rssMb(pid);
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, rssMb(pid));
  }
  return peak;
}

/** Bodies just under 1 MiB declared, trickled 4 KiB every 200 ms on `count` connections. */
async function slowBodyFlood(url: string, count: number, until: number) {
  const { hostname, port } = new URL(url);
  const answers = new Map<string, number>();
  const note = (what: string) => answers.set(what, (answers.get(what) ?? 0) + 1);
  const piece = Buffer.alloc(4096, 0x41);
  const sockets: Socket[] = [];
  const done: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const s = connect(Number(port), hostname);
    sockets.push(s);
    let answer = "";
    done.push(
      new Promise<void>((resolve) => {
        s.on("data", (d) => {
          answer += String(d);
        });
        s.on("error", () => {});
        s.on("close", () => {
          note(
            answer.split("\r\n")[0] || (performance.now() < until ? "closed, no answer" : "open"),
          );
          resolve();
        });
      }),
    );
    s.on("connect", () =>
      s.write(
        `POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${1024 * 1024 - 1}\r\n\r\n`,
      ),
    );
  }
  const drip = setInterval(() => {
    for (const s of sockets) if (s.writable && !s.connecting) s.write(piece);
  }, 200);
  await new Promise((r) => setTimeout(r, Math.max(0, until - performance.now())));
  clearInterval(drip);
  for (const s of sockets) s.destroy();
  await Promise.all(done);
  return Object.fromEntries(answers);
}

/** POSTs `body` as a PNG back to back until `until`, telling `answered` each status and time. */
async function postUntil(
  url: string,
  body: Buffer,
  until: number,
  answered: (status: number, ms: number) => void,
): Promise<void> {
  while (performance.now() < until) {
    const t = performance.now();
    const r = await fetch(new URL("/api/predict", url), {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body: new Uint8Array(body),
    });
    await r.arrayBuffer();
    answered(r.status, performance.now() - t);
  }
}

/** A 1x4,194,304 gray PNG: inside the pixel limit, over the side limit. */
function tallPng(): Buffer {
  const height = 4 * 1024 * 1024;
  return rawPng({ width: 1, height, idat: deflateSync(Buffer.alloc(2 * height)) });
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    failed: sorted.filter((v) => v === Number.POSITIVE_INFINITY).length,
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
    await postUntil(url, body, deadline, (status, ms) => {
      if (kind === "bomb") bombMs.push(ms);
      statuses[kind].set(status, (statuses[kind].get(status) ?? 0) + 1);
    });
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

  // The slow-body flood.
  const baseRss = rssMb(child.pid);
  const floodEnd = performance.now() + seconds * 1000;
  const [floodAnswers, floodHealth, floodPeak] = await Promise.all([
    slowBodyFlood(url, floodCount, floodEnd),
    sampleHealth(url, floodEnd),
    peakRss(child.pid, floodEnd),
  ]);
  await new Promise((r) => setTimeout(r, 2000));
  const afterFloodRss = rssMb(child.pid);

  // Tall PNGs.
  const tall = tallPng();
  const tallEnd = performance.now() + seconds * 1000;
  const tallStatuses = new Map<number, number>();
  const tallMs: number[] = [];
  const tallPoster = () =>
    postUntil(url, tall, tallEnd, (status, ms) => {
      tallMs.push(ms);
      tallStatuses.set(status, (tallStatuses.get(status) ?? 0) + 1);
    });
  const [, , tallHealth, tallPeak] = await Promise.all([
    tallPoster(),
    tallPoster(),
    sampleHealth(url, tallEnd),
    peakRss(child.pid, tallEnd),
  ]);
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
    slowBodyFlood: {
      connections: floodCount,
      answers: floodAnswers,
      healthz: summary(floodHealth),
      serverRssMb: { before: baseRss, peak: floodPeak, twoSecondsAfter: afterFloodRss },
    },
    tallPng: {
      bytes: tall.length,
      answers: Object.fromEntries(tallStatuses),
      p50ms: quantile(
        [...tallMs].sort((a, b) => a - b),
        0.5,
      ),
      healthz: summary(tallHealth),
      serverPeakRssMb: tallPeak,
    },
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
    `slow-body flood (${floodCount} connections, ~1 MiB bodies at 4 KiB / 200 ms): answers ${JSON.stringify(floodAnswers)}`,
    `  GET /healthz: ${floodHealth.length} samples (${report.slowBodyFlood.healthz.failed} failed), p50 ${f(report.slowBodyFlood.healthz.p50)} ms, p99 ${f(report.slowBodyFlood.healthz.p99)} ms, max ${f(report.slowBodyFlood.healthz.max)} ms`,
    `  server RSS: ${f(baseRss)} MB before, peak ${f(floodPeak)} MB, ${f(afterFloodRss)} MB 2 s after`,
    `tall PNGs (1x4194304, ${tall.length} bytes): ${JSON.stringify(report.tallPng.answers)} statuses, p50 ${f(report.tallPng.p50ms)} ms each`,
    `  GET /healthz: ${tallHealth.length} samples (${report.tallPng.healthz.failed} failed), p50 ${f(report.tallPng.healthz.p50)} ms, p99 ${f(report.tallPng.healthz.p99)} ms, max ${f(report.tallPng.healthz.max)} ms`,
    `  server peak RSS: ${f(tallPeak)} MB`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
