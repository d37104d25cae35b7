// `mnistc serve [MODEL.onnx] [--port 8080] [--host 127.0.0.1]`: the HTTP service and its page
// (src/runtime/serve/): drawing for a handwriting model, an image upload for any other. Prints the URL on stdout, one line per request on stderr, and on
// SIGINT/SIGTERM stops accepting, finishes the requests in flight and exits 0.
import { DigitModel, resolveModelFile } from "../runtime/inference/onnx-model.js";
import { startServer } from "../runtime/serve/server.js";

export interface ServeOptions {
  port: number;
  host: string;
}

/** Addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return (
    h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1"
  );
}

export async function serve(modelArg: string | undefined, opts: ServeOptions): Promise<number> {
  // One ORT thread: onnxruntime-node runs a session on the calling (main) thread, so extra intra-op
  // threads only spin against the event loop for the small batches a server sees (measured with
  // `npm run bench:serve` on 2 cores: batch-1 inference 0.3 ms with 1 thread, 1.0 ms with 2).
  // A server stays up: a promise some request left rejected is logged as the bug it is, in one
  // place, and never ends the process for every other client.
  process.on("unhandledRejection", (err) => {
    process.stderr.write(`mnistc serve: internal error: ${(err as Error)?.stack ?? err}\n`);
  });
  const model = await DigitModel.load(resolveModelFile(modelArg), { threads: 1 });
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ model, host: opts.host, port: opts.port });
  } catch (err) {
    await model.release();
    throw err;
  }
  const { name, params, weights, dataset } = model.info;
  const about = [name, dataset, params === undefined ? undefined : `${params} parameters`, weights]
    .filter((part) => part !== undefined)
    .join(", ");
  process.stderr.write(`mnistc serve: ${model.info.file} (${about}); Ctrl+C stops\n`);
  if (!isLoopback(opts.host)) {
    process.stderr.write(
      `mnistc serve: warning: listening on ${opts.host}: the service is reachable from other machines, not only this one\n`,
    );
  }
  process.stdout.write(`${server.url}\n`);

  // The first signal stops gracefully; with the handlers removed, a second one kills at once.
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(sig);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  process.stderr.write(`mnistc serve: ${signal}: finishing requests in flight\n`);
  await server.close();
  await model.release();
  process.stderr.write("mnistc serve: stopped\n");
  return 0;
}
