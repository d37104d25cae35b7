// The sweep's status line: on a terminal a live line redrawn under the log lines (cli-progress);
// otherwise only the log lines.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { StatusLine } from "../src/runtime/train/progress.js";

/** A stream that says it is a terminal, and keeps what is written. */
function terminal(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = "";
  const w = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  w.isTTY = tty;
  w.columns = 120;
  return { stream: w as unknown as NodeJS.WriteStream, text: () => out };
}

const ESC = "\x1b";
const plain = (s: string) => s.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "");

test("on a terminal: a live line under the log lines, redrawn in place, removed at the end", async () => {
  const t = terminal(true);
  const line = new StatusLine({ quiet: false, stream: t.stream });
  assert.equal(line.live, true);
  line.log("before the line");
  line.update(0, 4, "trials ended | 0 rejected, 2 running | best -; ETA ?");
  line.log("t001 done: 97.00%");
  line.update(1, 4, "trials ended | 0 rejected, 1 running | best t001 97.00%; ETA 12s");
  await sleep(250); // cli-progress redraws on its own timer
  line.stop();
  line.update(2, 4, "after stop: not drawn");
  const text = t.text();
  assert.match(text, /before the line\n/);
  assert.match(plain(text), /t001 done: 97\.00%\n/);
  assert.match(
    plain(text),
    /\] 1\/4 trials ended \| 0 rejected, 1 running \| best t001 97\.00%; ETA 12s/,
  );
  assert.ok(text.includes(`${ESC}[`), "drawn with terminal escapes");
  assert.doesNotMatch(text, /after stop/);
});

test("not a terminal: only the log lines; quiet: nothing", () => {
  const t = terminal(false);
  const line = new StatusLine({ quiet: false, stream: t.stream });
  assert.equal(line.live, false);
  line.update(1, 4, "not drawn");
  line.log("t001 done: 97.00% [1/4 done]");
  line.stop();
  assert.equal(t.text(), "t001 done: 97.00% [1/4 done]\n");
  const q = terminal(true);
  const quiet = new StatusLine({ quiet: true, stream: q.stream });
  quiet.update(1, 4, "x");
  quiet.log("y");
  quiet.stop();
  assert.equal(q.text(), "");
});
