// The HTTP API of `mnistc serve` against a real server on an ephemeral loopback port and a real ONNX
// model: every error case, health, the page's files, predictions for real MNIST test digits sent as
// JSON and as PNG, concurrency, logging and a graceful close.
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { decodeImage } from "../src/runtime/inference/image.js";
import { DigitModel } from "../src/runtime/inference/onnx-model.js";
import { preprocessImage } from "../src/runtime/inference/preprocess.js";
import { MAX_BODY_BYTES } from "../src/runtime/serve/body.js";
import { type RunningServer, startServer } from "../src/runtime/serve/server.js";
import {
  digitOnPaperPng,
  digitPixels,
  encodeGrayPng,
  mnistTest,
  needsTrainedModel,
  servedModelFile,
} from "./serve-helpers.js";

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

interface PredictAnswer {
  digit: number;
  probabilities: number[];
  ms: number;
  input28: number[];
}

let model: DigitModel;
let server: RunningServer;
const logLines: string[] = [];
const test10 = mnistTest(10);

before(async () => {
  model = await DigitModel.load(servedModelFile());
  server = await startServer({ model, port: 0, log: (line) => logLines.push(line) });
});

after(async () => {
  await server.close();
  await model.release();
});

async function call(
  path: string,
  init: { method?: string; type?: string; body?: Uint8Array | string } = {},
): Promise<Answer> {
  const response = await fetch(new URL(path, server.url), {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: init.type ? { "Content-Type": init.type } : {},
    // A copy typed on a plain ArrayBuffer, which is what fetch's BodyInit accepts.
    ...(init.body === undefined
      ? {}
      : { body: typeof init.body === "string" ? init.body : new Uint8Array(init.body) }),
  });
  const text = await response.text();
  const isJson = response.headers.get("content-type")?.startsWith("application/json");
  return {
    status: response.status,
    headers: response.headers,
    body: isJson ? JSON.parse(text) : text,
  };
}

const postJson = (value: unknown) =>
  call("/api/predict", { type: "application/json", body: JSON.stringify(value) });

function assertError(answer: Answer, status: number, pattern: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  const { error } = answer.body as { error?: unknown };
  assert.equal(typeof error, "string");
  assert.match(error as string, pattern);
}

function assertPrediction(body: unknown): PredictAnswer {
  const p = body as PredictAnswer;
  assert.ok(Number.isInteger(p.digit) && p.digit >= 0 && p.digit <= 9, `digit ${p.digit}`);
  assert.equal(p.probabilities.length, 10);
  const sum = p.probabilities.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9, `probabilities sum to ${sum}`);
  assert.equal(p.probabilities.indexOf(Math.max(...p.probabilities)), p.digit);
  assert.ok(typeof p.ms === "number" && p.ms >= 0);
  assert.equal(p.input28.length, 784);
  return p;
}

/** What the model says for 784 pixels when called directly (no server). */
async function direct(pixels: Uint8Array): Promise<number[]> {
  const logProbs = await model.predictBatch(model.normalize(pixels, 1), 1);
  return Array.from(logProbs, Math.exp);
}

describe("health and page", () => {
  test("GET /healthz names the model, its parameters and input shape", async () => {
    const { status, body } = await call("/healthz");
    assert.equal(status, 200);
    const health = body as Record<string, unknown>;
    assert.equal(health.status, "ok");
    assert.equal(health.model, "step4");
    assert.equal(health.params, 16478); // the seed's net, as the course counts it
    assert.deepEqual(health.inputShape, [1, 28, 28]);
    assert.equal(health.classes, 10);
  });

  test("GET / serves the page, with its script and style from this server only", async () => {
    const page = await call("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = page.body as string;
    assert.match(html, /<canvas[^>]*id="pad"/);
    assert.match(html, /<button[^>]*id="clear"/);
    assert.doesNotMatch(html, /https?:\/\//, "the page must not load anything from another host");
    for (const [path, type] of [
      ["/page.js", /^text\/javascript/],
      ["/page.css", /^text\/css/],
      ["/favicon.svg", /^image\/svg\+xml/],
    ] as const) {
      const asset = await call(path);
      assert.equal(asset.status, 200, path);
      assert.match(asset.headers.get("content-type") ?? "", type, path);
    }
  });

  test("HEAD / answers like GET without a body", async () => {
    const head = await call("/", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
  });
});

describe("bad requests", () => {
  const png = encodeGrayPng(digitPixels(test10, 0), 28, 28);
  const cases: { name: string; send: () => Promise<Answer>; status: number; error: RegExp }[] = [
    { name: "unknown route → 404", send: () => call("/nope"), status: 404, error: /no such path/ },
    {
      name: "unknown route under /api → 404",
      send: () => call("/api/predict/extra", { body: "{}", type: "application/json" }),
      status: 404,
      error: /no such path: \/api\/predict\/extra/,
    },
    {
      name: "empty body → 400",
      send: () => call("/api/predict", { body: "", type: "image/png" }),
      status: 400,
      error: /empty body/,
    },
    {
      name: "malformed JSON → 400",
      send: () => call("/api/predict", { body: '{"pixels": [1, 2', type: "application/json" }),
      status: 400,
      error: /malformed JSON/,
    },
    {
      name: "JSON that is not an object → 400",
      send: () => postJson([1, 2, 3]),
      status: 400,
      error: /expected a JSON object/,
    },
    {
      name: "no pixels array → 400",
      send: () => postJson({ image: [] }),
      status: 400,
      error: /"pixels" must be an array/,
    },
    {
      name: "783 pixels → 400",
      send: () => postJson({ pixels: new Array(783).fill(0) }),
      status: 400,
      error: /has 783 values; expected 784/,
    },
    {
      name: "a pixel above 255 → 400",
      send: () => postJson({ pixels: [...new Array(100).fill(0), 256, ...new Array(683).fill(0)] }),
      status: 400,
      error: /"pixels"\[100\] is 256/,
    },
    {
      name: "a negative pixel → 400",
      send: () => postJson({ pixels: [-1, ...new Array(783).fill(0)] }),
      status: 400,
      error: /"pixels"\[0\] is -1/,
    },
    {
      name: "a fractional pixel → 400",
      send: () => postJson({ pixels: [...new Array(783).fill(0), 0.5] }),
      status: 400,
      error: /"pixels"\[783\] is 0.5; expected an integer 0-255/,
    },
    {
      name: "a string pixel → 400",
      send: () => postJson({ pixels: ["7", ...new Array(783).fill(0)] }),
      status: 400,
      error: /"pixels"\[0\] is "7"/,
    },
    {
      name: "a non-PNG body sent as image/png → 400",
      send: () => call("/api/predict", { body: "GIF89a not a png", type: "image/png" }),
      status: 400,
      error: /not a PNG image/,
    },
    {
      name: "a truncated PNG → 400",
      send: () => call("/api/predict", { body: png.subarray(0, 40), type: "image/png" }),
      status: 400,
      error: /not a readable PNG/,
    },
    {
      name: "a PNG declaring 20000x20000 pixels → 400 before decoding",
      send: () => {
        const bomb = Buffer.from(png);
        bomb.writeUInt32BE(20000, 16); // IHDR width
        bomb.writeUInt32BE(20000, 20); // IHDR height
        return call("/api/predict", { body: bomb, type: "image/png" });
      },
      status: 400,
      error: /PNG image is 20000x20000; at most 4194304 pixels/,
    },
    {
      name: "a PGM declaring 30000x30000 pixels → 400 before decoding",
      send: () =>
        call("/api/predict", {
          body: "P5\n# huge\n30000 30000\n255\n\0\0\0",
          type: "image/x-portable-graymap",
        }),
      status: 400,
      error: /PGM image is 30000x30000/,
    },
    {
      name: "a PGM body is read like `mnistc predict` reads it",
      send: () =>
        call("/api/predict", { body: "P2\n2 1\n255\n0 0\n", type: "image/x-portable-graymap" }),
      status: 400,
      error: /no digit found/,
    },
    {
      name: "a blank PNG (no digit) → 400",
      send: () =>
        call("/api/predict", {
          body: encodeGrayPng(new Uint8Array(50 * 50).fill(255), 50, 50),
          type: "image/png",
        }),
      status: 400,
      error: /no digit found/,
    },
    {
      name: "a body that is neither an image nor JSON → 400",
      send: () => call("/api/predict", { body: "7", type: "text/plain" }),
      status: 400,
      error: /Content-Type "text\/plain"\) is neither a PNG or PGM image nor JSON/,
    },
    {
      name: "a body over 1 MB (Content-Length) → 413",
      send: () =>
        call("/api/predict", { body: new Uint8Array(MAX_BODY_BYTES + 1), type: "image/png" }),
      status: 413,
      error: /larger than 1048576 bytes/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => assertError(await c.send(), c.status, c.error));
  }

  test("wrong method → 405 with Allow", async () => {
    const get = await call("/api/predict");
    assertError(get, 405, /GET is not allowed on \/api\/predict/);
    assert.equal(get.headers.get("allow"), "POST");
    const post = await call("/", { body: "x", type: "text/plain" });
    assertError(post, 405, /POST is not allowed on \//);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const del = await call("/healthz", { method: "DELETE" });
    assertError(del, 405, /DELETE/);
  });

  test("a streamed (chunked) body over 1 MB is refused with 413 before it is all sent", async () => {
    const url = new URL("/api/predict", server.url);
    const chunk = Buffer.alloc(64 * 1024, 1);
    const limit = 16 * MAX_BODY_BYTES;
    let sent = 0;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(url, {
        method: "POST",
        headers: { "Content-Type": "image/png", "Transfer-Encoding": "chunked" },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      // The server closes the connection after its answer; the rest of the upload then fails.
      req.on("error", (err) => (sent >= limit ? reject(err) : undefined));
      const pump = (): void => {
        while (sent < limit) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once("drain", pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(status, 413);
    assert.ok(sent < limit, `the server read all ${sent} bytes before answering`);
  });

  test("the server still answers after every bad request", async () => {
    assert.equal((await call("/healthz")).status, 200);
  });
});

describe("predictions", () => {
  test("JSON pixels of MNIST test digits: fed as is, same answer as the model itself", async () => {
    for (let i = 0; i < test10.count; i++) {
      const pixels = digitPixels(test10, i);
      const answer = await postJson({ pixels: Array.from(pixels) });
      assert.equal(answer.status, 200);
      const p = assertPrediction(answer.body);
      assert.deepEqual(p.input28, Array.from(pixels), "JSON pixels reach the model unchanged");
      const expected = await direct(pixels);
      for (const [c, q] of expected.entries()) {
        assert.ok(Math.abs((p.probabilities[c] ?? 0) - q) < 1e-6, `digit ${i} class ${c}`);
      }
    }
  });

  test("PNG of a digit on paper: the same preprocessing as `mnistc predict`", async () => {
    const png = digitOnPaperPng(test10, 0);
    const answer = await call("/api/predict", { body: png, type: "image/png" });
    assert.equal(answer.status, 200);
    const p = assertPrediction(answer.body);
    const image = decodeImage(png, "digit.png");
    const expected = preprocessImage(image.data, image.width, image.height);
    assert.deepEqual(p.input28, Array.from(expected));
    const probabilities = await direct(expected);
    assert.equal(p.digit, probabilities.indexOf(Math.max(...probabilities)));
  });

  test("a PGM body is prepared exactly like the same image as PNG", async () => {
    const pixels = digitPixels(test10, 3);
    const pgm = Buffer.concat([Buffer.from("P5\n28 28\n255\n"), pixels]);
    const viaPgm = await call("/api/predict", { body: pgm, type: "image/x-portable-graymap" });
    const viaPng = await call("/api/predict", {
      body: encodeGrayPng(pixels, 28, 28),
      type: "image/png",
    });
    assert.equal(viaPgm.status, 200);
    assert.deepEqual(assertPrediction(viaPgm.body).input28, assertPrediction(viaPng.body).input28);
  });

  test("bodies labelled loosely (curl --data-binary) are recognized by their first bytes", async () => {
    const pixels = digitPixels(test10, 4);
    const png = encodeGrayPng(pixels, 28, 28);
    const labelled = await call("/api/predict", { body: png, type: "image/png" });
    const form = "application/x-www-form-urlencoded";
    const loose = await call("/api/predict", { body: png, type: form });
    assert.equal(loose.status, 200);
    assert.deepEqual(assertPrediction(loose.body).input28, assertPrediction(labelled.body).input28);
    const json = JSON.stringify({ pixels: Array.from(pixels) });
    const looseJson = await call("/api/predict", { body: json, type: form });
    assert.equal(looseJson.status, 200);
    assert.deepEqual(assertPrediction(looseJson.body).input28, Array.from(pixels));
  });

  test('JSON with "preprocess": true is prepared exactly like the same image as PNG', async () => {
    const pixels = digitPixels(test10, 2);
    const viaJson = await postJson({ pixels: Array.from(pixels), preprocess: true });
    const viaPng = await call("/api/predict", {
      body: encodeGrayPng(pixels, 28, 28),
      type: "image/png",
    });
    assert.equal(viaJson.status, 200);
    assert.deepEqual(assertPrediction(viaJson.body).input28, assertPrediction(viaPng.body).input28);
  });

  test("the trained model names the first 10 MNIST test digits right, as JSON and as PNG", {
    skip: needsTrainedModel,
  }, async () => {
    const labels = Array.from(test10.labels);
    const viaJson: number[] = [];
    const viaPng: number[] = [];
    for (let i = 0; i < test10.count; i++) {
      const json = await postJson({ pixels: Array.from(digitPixels(test10, i)) });
      viaJson.push(assertPrediction(json.body).digit);
      const png = await call("/api/predict", {
        body: digitOnPaperPng(test10, i),
        type: "image/png",
      });
      viaPng.push(assertPrediction(png.body).digit);
    }
    assert.deepEqual(viaJson, labels);
    assert.deepEqual(viaPng, labels);
  });

  test("40 concurrent requests each get the answer for their own image", async () => {
    const images = Array.from({ length: 40 }, (_, k) => digitPixels(test10, k % test10.count));
    const answers = await Promise.all(
      images.map((pixels) => postJson({ pixels: Array.from(pixels) })),
    );
    for (const [k, answer] of answers.entries()) {
      assert.equal(answer.status, 200);
      const p = assertPrediction(answer.body);
      const expected = await direct(images[k] as Uint8Array);
      assert.deepEqual(p.input28, Array.from(images[k] as Uint8Array));
      for (const [c, q] of expected.entries()) {
        assert.ok(Math.abs((p.probabilities[c] ?? 0) - q) < 1e-6, `request ${k} class ${c}`);
      }
    }
  });
});

describe("logging and closing", () => {
  test("one log line per request: method, path, status, ms", async () => {
    const before = logLines.length;
    await call("/healthz?verbose=1");
    await call("/nope");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const lines = logLines.slice(before);
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[0] ?? "", /^GET \/healthz 200 \d+\.\dms$/);
    assert.match(lines[1] ?? "", /^GET \/nope 404 \d+\.\dms$/);
  });

  test("close() lets an in-flight request finish, then refuses new connections", async () => {
    const own = await startServer({ model, port: 0, log: false });
    const body = JSON.stringify({ pixels: Array.from(digitPixels(test10, 0)) });
    const half = Math.floor(body.length / 2);
    const req = httpRequest(new URL("/api/predict", own.url), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": String(body.length) },
    });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      req.on("response", (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
    });
    req.write(body.slice(0, half));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the request is now in flight
    const closed = own.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    req.end(body.slice(half));
    const { status, text } = await response;
    assert.equal(status, 200);
    assert.equal(assertPrediction(JSON.parse(text)).input28.length, 784);
    await closed;
    await assert.rejects(fetch(new URL("/healthz", own.url)), "a closed server refuses");
  });
});
