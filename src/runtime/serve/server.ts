// `mnistc serve`'s HTTP service on node:http: the page (draw a digit for a handwriting model, drop
// or pick an image for any other), POST /api/predict, GET /api/model and GET /healthz for one ONNX
// model whose single ORT session is shared by every request.
//
// Every request is answered and logged (one line on `log`: method, path, status, ms); a handler's
// HttpError becomes `{"error"}` with its status, anything else a logged 500 — a bad request never
// takes the server down. `close()` stops accepting, lets in-flight requests finish, then resolves.
//
// Under a hostile client: bodies are decoded in worker threads (decode-pool.ts), so the event loop
// never spends more than a fraction of a millisecond on one; both queues (decoding, the model) are
// bounded and answer 503 with Retry-After when full; a body that has not arrived within the request
// timeout is a 408 and its connection is closed; a client that hangs up is one log line. Class
// names come from the model file, which may be hostile: they only ever leave as JSON strings.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { UserError } from "../../errors.js";
import { MAX_IMAGE_PIXELS } from "../inference/image.js";
import type { DigitModel } from "../inference/onnx-model.js";
import { MNIST_SIDE } from "../inference/preprocess.js";
import { argmax, toProbabilities } from "../inference/probabilities.js";
import { type Asset, loadAssets } from "./assets.js";
import { PredictionBatcher } from "./batcher.js";
import { BODY_TIMEOUT_MS, MAX_BODY_BYTES, readBody } from "./body.js";
import { DecodePool } from "./decode-pool.js";
import { HttpError } from "./http-error.js";
import type { Prediction, ServeProfile } from "./predict.js";

export interface ServerOptions {
  model: DigitModel;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** One line per request; default: stderr. `false`: silent. */
  log?: ((line: string) => void) | false;
  /** A request body must have arrived within this many ms (default 30 s), else 408. */
  requestTimeoutMs?: number;
  /** Decode worker threads (default: cores - 1, at least 1). */
  decodeWorkers?: number;
  /** Bodies waiting for a decode worker before 503 (default 64). */
  maxDecodeQueue?: number;
  /** Images waiting for the model before 503 (default 256). */
  maxModelQueue?: number;
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:43125/` (the real port when 0 was asked). */
  url: string;
  /** Stop accepting connections, finish in-flight requests, then resolve. */
  close(): Promise<void>;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

type Handler = (req: IncomingMessage) => Promise<Reply>;

/** Page and API are same-origin only; this is what "works offline" means to the browser. */
const PAGE_SECURITY = {
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

/** How long `close()` waits for in-flight requests before cutting their connections. */
const CLOSE_GRACE_MS = 10_000;

/**
 * JSON with `<`, `>`, `&` and the JS line separators as \u escapes: the same value to any JSON
 * parser, but a class name like `</script>` stays inert wherever the text ends up.
 */
function jsonText(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...headers,
    },
    body: `${jsonText(value)}\n`,
  };
}

function assetHandler(asset: Asset): Handler {
  return async () => ({
    status: 200,
    headers: { "Content-Type": asset.contentType, "Cache-Control": "no-cache", ...PAGE_SECURITY },
    body: asset.body,
  });
}

/** A user's mistake in --host/--port as one clear line; anything else stays a bug. */
function listenError(err: NodeJS.ErrnoException, where: string): Error {
  const reasons: Record<string, string> = {
    EADDRINUSE: "the address is already in use",
    EADDRNOTAVAIL: "no such local address",
    ENOTFOUND: "no such host",
    EACCES: "permission denied (ports below 1024 need privileges)",
  };
  const reason = reasons[err.code ?? ""];
  return reason ? new UserError(`cannot listen on ${where}: ${reason}`) : err;
}

function hostForUrl(address: AddressInfo): string {
  return address.family === "IPv6" ? `[${address.address}]` : address.address;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { model } = options;
  const { classNames, preprocess } = model.info;
  const [channels, height, width] = model.info.inputShape;
  if (preprocess === "digit" && (channels !== 1 || height !== MNIST_SIDE || width !== MNIST_SIDE)) {
    throw new UserError(
      `${model.info.file}: the model reads ${channels}x${height}x${width} images; its digit preprocessing makes 1x${MNIST_SIDE}x${MNIST_SIDE}`,
    );
  }
  const profile: ServeProfile = { input: { channels, height, width }, preprocess };
  // The answer's `digit` and `input28`, as before datasets, for handwriting models only.
  const digits = preprocess === "digit";
  const log =
    options.log === false
      ? () => {}
      : (options.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const requestTimeoutMs = options.requestTimeoutMs ?? BODY_TIMEOUT_MS;
  const batcher = new PredictionBatcher(model, 64, options.maxModelQueue ?? 256);
  const pool = new DecodePool({
    profile,
    ...(options.decodeWorkers !== undefined ? { size: options.decodeWorkers } : {}),
    ...(options.maxDecodeQueue !== undefined ? { maxQueue: options.maxDecodeQueue } : {}),
    log,
  });

  const predict: Handler = async (req) => {
    const body = await readBody(req, MAX_BODY_BYTES, requestTimeoutMs);
    const start = performance.now();
    const pixels = await pool.decode(req.headers["content-type"], body);
    const probabilities = toProbabilities(await batcher.predict(pixels));
    const best = argmax(probabilities);
    const prediction: Prediction = {
      class: best,
      label: classNames[best] ?? String(best),
      ...(digits ? { digit: best } : {}),
      probabilities,
      ms: Math.round((performance.now() - start) * 1000) / 1000,
      ...(digits ? { input28: Array.from(pixels) } : { input: Array.from(pixels) }),
    };
    return json(200, prediction);
  };

  // What the page adapts to: drawing or an image, the bars' names, the shape of `input`.
  const about: Handler = async () =>
    json(200, {
      name: model.info.name,
      file: basename(model.info.file),
      dataset: model.info.dataset ?? null,
      classes: model.info.classes,
      classNames,
      inputShape: model.info.inputShape,
      preprocess,
      params: model.info.params ?? null,
      weights: model.info.weights ?? null,
      maxBodyBytes: MAX_BODY_BYTES,
      maxImagePixels: MAX_IMAGE_PIXELS,
    });

  const healthz: Handler = async () =>
    json(200, {
      status: "ok",
      model: model.info.name,
      // The file's name only: where the server's files live is nobody else's business.
      file: basename(model.info.file),
      params: model.info.params ?? null,
      inputShape: model.info.inputShape,
      classes: model.info.classes,
      weights: model.info.weights ?? null,
    });

  // path → method → handler; HEAD is answered wherever GET is (node sends no body for HEAD).
  const routes = new Map<string, Record<string, Handler>>();
  for (const [path, asset] of loadAssets()) routes.set(path, { GET: assetHandler(asset) });
  routes.set("/healthz", { GET: healthz });
  routes.set("/api/predict", { POST: predict });
  routes.set("/api/model", { GET: about });

  async function route(req: IncomingMessage, path: string): Promise<Reply> {
    const methods = routes.get(path);
    if (!methods) throw new HttpError(404, `no such path: ${path}`);
    const method = req.method === "HEAD" && methods.GET ? "GET" : (req.method ?? "");
    const handler = methods[method];
    if (!handler) {
      const allow = Object.keys(methods).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
      throw new HttpError(405, `${req.method} is not allowed on ${path}`, {
        Allow: allow.join(", "),
      });
    }
    return handler(req);
  }

  let closing = false;
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = performance.now();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    res.on("close", () => {
      const ms = (performance.now() - start).toFixed(1);
      const status = res.writableFinished ? String(res.statusCode) : "aborted";
      log(`${req.method} ${path} ${status} ${ms}ms`);
    });
    let reply: Reply;
    try {
      reply = await route(req, path);
    } catch (err) {
      if (err instanceof HttpError) {
        reply = json(err.status, { error: err.message }, err.headers);
      } else {
        log(`internal error on ${req.method} ${path}: ${(err as Error).stack ?? err}`);
        reply = json(500, { error: "internal server error" });
      }
    }
    // A body left unread (413, or an error before reading) must not be parsed as the next
    // request: close the connection rather than read it all. So does a server that is closing.
    const unread = !req.complete;
    if (unread || closing) reply.headers.Connection = "close";
    if (res.destroyed) return; // the client hung up; the close listener logs it
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
    // A client still trickling a body it was refused (408, 413) is not waited for: once the
    // answer is out, the connection is closed, whatever the client keeps sending.
    if (unread) res.once("finish", () => hangUp(req.socket));
  }

  function hangUp(socket: Socket): void {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  const server = createServer(
    // Node checks its own request and header timeouts this often (default 30 s, which let a slow
    // client live up to twice the timeout).
    { connectionsCheckingInterval: 1000 },
    (req, res) => {
      handle(req, res).catch((err) => {
        log(`internal error on ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
        res.destroy();
      });
    },
  );
  // A malformed request or a connection reset before a request was read: one line, no trace.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? err.message;
    // A hang-up is already the request's own "aborted" line (or nothing, between requests).
    const hangUp = code === "ECONNRESET" || code === "EPIPE" || code === "HPE_INVALID_EOF_STATE";
    if (!hangUp) log(`client error: ${code}`);
    if (socket.writable && code === "HPE_HEADER_OVERFLOW") {
      socket.end("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n");
    } else if (socket.writable && !hangUp && code !== "ERR_HTTP_REQUEST_TIMEOUT") {
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    } else if (socket.writable && code === "ERR_HTTP_REQUEST_TIMEOUT") {
      socket.end("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n");
    } else {
      socket.destroy();
    }
  });
  // `Expect: 100-continue`: a body declared too large is refused before the client sends it.
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers["content-length"]) > MAX_BODY_BYTES)) res.writeContinue();
    void handle(req, res);
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = Math.min(10_000, requestTimeoutMs);
  // Node's own backstop, just after ours (a body not in after requestTimeoutMs is our 408).
  server.requestTimeout = requestTimeoutMs + 1000;

  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 0;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(listenError(err, `${host}:${port}`)));
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    await pool.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `http://${hostForUrl(address)}:${address.port}/`;

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      server.close(() => resolve());
      // Idle keep-alive connections would hold the server open; in-flight ones end after their
      // response (which says Connection: close). A request that never ends is cut after a grace.
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 100).unref();
      const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
      server.once("close", () => {
        clearInterval(idle);
        clearTimeout(grace);
        void pool.close();
      });
    });
    return closed;
  }
  return { url, close };
}
