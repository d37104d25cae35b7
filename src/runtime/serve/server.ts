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
//
// Bounded across clients (issue 23): at most MAX_CONNECTIONS connections (at the cap, a new one
// replaces the oldest that has had no request in flight for a second, a silent or idle socket,
// else it is a 503);
// request bodies share one budget (body.ts: 503 beyond it); a connection may have MAX_PIPELINED
// requests in flight, beyond which a client that sends requests without reading the answers is
// cut; a refused body (413, 503) is answered, then whatever still arrives is read and dropped for
// a bounded time and size before the connection closes (nginx's lingering close), so the client
// reads its answer rather than a reset.
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
import {
  BODY_TIMEOUT_MS,
  BodyBudget,
  type BodyLease,
  MAX_BODIES_BYTES,
  MAX_BODY_BYTES,
  readBody,
} from "./body.js";
import { DecodePool } from "./decode-pool.js";
import { HttpError, RETRY_AFTER_SECONDS } from "./http-error.js";
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
  /** Open connections at once (default MAX_CONNECTIONS). */
  maxConnections?: number;
  /** Bytes of request bodies held at once, all requests together (default MAX_BODIES_BYTES). */
  maxBodiesBytes?: number;
  /** After a refused body: how long what still arrives is read and dropped (default LINGER_MS). */
  lingerMs?: number;
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

type Handler = (req: IncomingMessage, lease: BodyLease) => Promise<Reply>;

/** Page and API are same-origin only; this is what "works offline" means to the browser. */
const PAGE_SECURITY = {
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

/** How long `close()` waits for in-flight requests before cutting their connections. */
const CLOSE_GRACE_MS = 10_000;
/** Open connections at once; each costs a file descriptor (`ulimit -n` is often 1,024). */
export const MAX_CONNECTIONS = 256;
/**
 * Requests of one connection in flight (read, not yet answered and sent). A client pipelining
 * more without reading the answers made the server hold about 10 MB a connection.
 */
export const MAX_PIPELINED = 16;
/** At the connection cap, a connection idle this long gives way to a new one. */
export const IDLE_GRACE_MS = 1_000;
/** After a refused body, what still arrives is dropped for at most this long and this much. */
export const LINGER_MS = 5_000;
export const LINGER_BYTES = 8 * 1024 * 1024;

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

  const maxBodiesBytes = options.maxBodiesBytes ?? MAX_BODIES_BYTES;
  const bodies = new BodyBudget(maxBodiesBytes);
  const maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
  const lingerMs = options.lingerMs ?? LINGER_MS;

  const predict: Handler = async (req, lease) => {
    const body = await readBody(req, MAX_BODY_BYTES, requestTimeoutMs, lease, maxBodiesBytes);
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

  async function route(req: IncomingMessage, path: string, lease: BodyLease): Promise<Reply> {
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
    return handler(req, lease);
  }

  let closing = false;
  // Per connection: requests read and not yet answered and sent (MAX_PIPELINED; and a connection
  // with none in flight may be replaced at the connection cap).
  const inFlight = new WeakMap<Socket, number>();
  // When a connection last had nothing in flight (its admission, or its last answer).
  const idleSince = new WeakMap<Socket, number>();
  const cut = new WeakSet<Socket>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = performance.now();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const socket = req.socket;
    if (cut.has(socket)) {
      res.destroy();
      return;
    }
    const pending = (inFlight.get(socket) ?? 0) + 1;
    inFlight.set(socket, pending);
    if (pending > MAX_PIPELINED) {
      // Sending requests without reading the answers: no more is read from this client.
      cut.add(socket);
      log(`connection cut: more than ${MAX_PIPELINED} requests in flight on one connection`);
      socket.destroy();
      return;
    }
    res.on("close", () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (left === 0) idleSince.set(socket, performance.now());
      const ms = (performance.now() - start).toFixed(1);
      const status = res.writableFinished ? String(res.statusCode) : "aborted";
      log(`${req.method} ${path} ${status} ${ms}ms`);
    });
    let reply: Reply;
    const lease = bodies.lease();
    try {
      reply = await route(req, path, lease);
    } catch (err) {
      if (err instanceof HttpError) {
        reply = json(err.status, { error: err.message }, err.headers);
      } else {
        log(`internal error on ${req.method} ${path}: ${(err as Error).stack ?? err}`);
        reply = json(500, { error: "internal server error" });
      }
    } finally {
      // The body has been decoded (or refused): its bytes leave the budget.
      lease.release();
    }
    // A body left unread (413, or an error before reading) must not be parsed as the next
    // request: close the connection rather than read it all. So does a server that is closing.
    const unread = !req.complete;
    if (unread || closing) reply.headers.Connection = "close";
    if (res.destroyed) return; // the client hung up; the close listener logs it
    if (unread && reply.status !== 408) {
      // A client still sending a body it was refused: Node would close at once when the answer is
      // out, and closing with unread data makes the kernel send a reset, which destroys the answer
      // the client has not read yet. So the rest is read and dropped first (bounded).
      (socket as Socket & { destroySoon: () => void }).destroySoon = () => linger(req, socket);
    }
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
    // A client trickling a body past the request timeout (408) is not waited for: once the
    // answer is out, the connection is closed, whatever the client keeps sending.
    if (unread && reply.status === 408) res.once("finish", () => hangUp(socket));
  }

  function hangUp(socket: Socket): void {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /**
   * nginx's lingering close: the answer is out; half-close, then read and drop what the client
   * still sends until it has sent its whole request, for at most `lingerMs` and LINGER_BYTES.
   */
  function linger(req: IncomingMessage, socket: Socket): void {
    let dropped = 0;
    const stop = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(stop, lingerMs);
    socket.once("close", () => clearTimeout(timer));
    req.on("data", (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > LINGER_BYTES) stop();
    });
    // All of the request is in: nothing unread is left, so closing sends no reset.
    req.once("end", stop);
    req.once("error", stop);
    socket.end();
    req.resume();
  }

  // The connection cap: the open connections, oldest first.
  const open = new Set<Socket>();
  let capNoted = 0;
  function admit(socket: Socket): void {
    if (open.size >= maxConnections) {
      // A connection with nothing in flight for IDLE_GRACE_MS (silent, or idle between requests)
      // gives way to the new one: silent sockets cannot lock out the clients that have something
      // to ask. A younger one keeps its chance to send its request (else, in a burst, each new
      // connection would close the one before it).
      const now = performance.now();
      let idle: Socket | undefined;
      for (const s of open) {
        if ((inFlight.get(s) ?? 0) === 0 && now - (idleSince.get(s) ?? now) >= IDLE_GRACE_MS) {
          idle = s;
          break;
        }
      }
      if (now - capNoted > 1000) {
        capNoted = now;
        log(
          `connections at the cap (${maxConnections}): ${idle ? "closing the oldest idle one" : "refusing new ones"}`,
        );
      }
      if (idle) {
        open.delete(idle);
        idle.destroy();
      } else {
        cut.add(socket);
        const body = `${jsonText({ error: `too many connections (at most ${maxConnections}); retry shortly` })}\n`;
        socket.end(
          `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: ${RETRY_AFTER_SECONDS}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        socket.once("finish", () => socket.destroy());
        return;
      }
    }
    open.add(socket);
    idleSince.set(socket, performance.now());
    socket.once("close", () => open.delete(socket));
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
  server.on("connection", admit);
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
