// The draw-a-digit page: pointer strokes on a canvas; the drawing is sent as a PNG to
// POST /api/predict (the server prepares it exactly as `mnistc predict` would), and the answer
// fills the digit, the ten probability bars and the 28x28 image the model saw.

const pad = document.getElementById("pad");
const seen = document.getElementById("seen");
const clearButton = document.getElementById("clear");
const result = document.getElementById("result");
const digitOut = document.getElementById("digit");
const confidenceOut = document.getElementById("confidence");
const timingOut = document.getElementById("timing");
const statusOut = document.getElementById("status");
const modelInfo = document.getElementById("model-info");
const bars = Array.from(document.querySelectorAll("#bars li"));

const PAPER = "#ffffff";
const INK = "#111111";
/** Stroke width relative to the pad: a digit drawn at full height gets MNIST-like strokes. */
const STROKE = 0.075;
/** Quiet time after the last stroke change before asking the server. */
const DEBOUNCE_MS = 120;
/** While a stroke goes on, ask at least this often so the answer follows the pen. */
const MAX_WAIT_MS = 350;

const ctx = pad.getContext("2d");
let side = 280; // CSS pixels
let hasInk = false;

/** Size the backing store to the device's pixels so strokes stay sharp on high-DPI screens. */
function setupPad() {
  const ratio = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  side = pad.getBoundingClientRect().width || 280;
  pad.width = Math.round(side * ratio);
  pad.height = Math.round(side * ratio);
  ctx.setTransform(pad.width / side, 0, 0, pad.height / side, 0, 0);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = INK;
  ctx.fillStyle = INK;
  ctx.lineWidth = side * STROKE;
  paper();
}

function paper() {
  ctx.save();
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, side, side);
  ctx.restore();
}

// ---- drawing -------------------------------------------------------------------------------

let drawing = null; // { id, x, y } of the pointer that draws

function point(event) {
  const box = pad.getBoundingClientRect();
  return { x: event.clientX - box.left, y: event.clientY - box.top };
}

function dot(p) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, Math.PI * 2);
  ctx.fill();
}

function segment(from, to) {
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || drawing) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  const p = point(event);
  drawing = { id: event.pointerId, ...p };
  dot(p);
  inked();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing || event.pointerId !== drawing.id) return;
  // Coalesced events keep fast strokes smooth instead of drawing a polygon.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const p = point(e);
    segment(drawing, p);
    drawing.x = p.x;
    drawing.y = p.y;
  }
  inked();
});

function endStroke(event) {
  if (!drawing || event.pointerId !== drawing.id) return;
  drawing = null;
  requestPrediction(true);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function inked() {
  hasInk = true;
  drawnVersion++;
  requestPrediction(false);
}

function clearAll() {
  drawing = null;
  hasInk = false;
  generation++;
  clearTimeout(debounceTimer);
  debounceTimer = undefined;
  firstChange = undefined;
  paper();
  showEmpty();
}

clearButton.addEventListener("click", () => {
  clearAll();
  pad.focus({ preventScroll: true });
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !event.defaultPrevented) clearAll();
});

// ---- asking the server ---------------------------------------------------------------------

let generation = 0; // bumped by Clear: answers for an older drawing are dropped
let drawnVersion = 0; // bumped by every stroke change; "done" means the answer is for the latest
let debounceTimer;
let firstChange; // time of the first change not yet sent
let inFlight = false;
let dirty = false; // changed while a request was in flight

function requestPrediction(now) {
  if (!hasInk) return;
  const t = performance.now();
  firstChange ??= t;
  clearTimeout(debounceTimer);
  const wait = now ? 0 : Math.max(0, Math.min(DEBOUNCE_MS, firstChange + MAX_WAIT_MS - t));
  debounceTimer = setTimeout(send, wait);
}

function pngOfPad() {
  return new Promise((resolve, reject) =>
    pad.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error("canvas export failed"))),
      "image/png",
    ),
  );
}

async function send() {
  debounceTimer = undefined;
  if (!hasInk) return;
  if (inFlight) {
    dirty = true; // one request at a time; the latest drawing follows when this one is back
    return;
  }
  firstChange = undefined;
  inFlight = true;
  dirty = false;
  const asked = generation;
  const version = drawnVersion;
  result.dataset.state = "pending";
  try {
    const body = await pngOfPad();
    const response = await fetch("/api/predict", {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body,
    });
    const answer = await response.json();
    if (asked !== generation) return;
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showPrediction(answer, version === drawnVersion);
  } catch (err) {
    if (asked === generation) showError(err);
  } finally {
    inFlight = false;
    if (dirty && hasInk) send();
  }
}

// ---- showing answers -----------------------------------------------------------------------

function percent(p) {
  const v = p * 100;
  return v >= 99.95 ? "100%" : v < 0.05 ? "0%" : `${v.toFixed(1)}%`;
}

/** `latest`: the answer is for the drawing as it is now (else a newer request follows). */
function showPrediction({ digit, probabilities, ms, input28 }, latest) {
  statusOut.textContent = "";
  digitOut.textContent = String(digit);
  confidenceOut.textContent = `${percent(probabilities[digit])} sure`;
  bars.forEach((li, i) => {
    const p = probabilities[i] ?? 0;
    li.querySelector(".fill").style.width = `${(p * 100).toFixed(2)}%`;
    li.querySelector(".pct").textContent = percent(p);
    li.classList.toggle("best", i === digit);
    li.dataset.probability = String(p);
    li.setAttribute("aria-label", `${i}: ${percent(p)}`);
  });
  drawSeen(input28);
  timingOut.textContent = `Server time (preprocessing and model): ${ms.toFixed(1)} ms`;
  result.dataset.state = latest ? "done" : "pending";
}

function drawSeen(pixels) {
  const view = seen.getContext("2d");
  const image = view.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = pixels[i] ?? 0;
    image.data[4 * i] = v;
    image.data[4 * i + 1] = v;
    image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  view.putImageData(image, 0, 0);
}

function showEmpty() {
  result.dataset.state = "empty";
  statusOut.textContent = "";
  digitOut.textContent = "–";
  confidenceOut.textContent = "Draw something to start";
  timingOut.textContent = "";
  for (const li of bars) {
    li.querySelector(".fill").style.width = "0";
    li.querySelector(".pct").textContent = "0%";
    li.classList.remove("best");
    delete li.dataset.probability;
    li.removeAttribute("aria-label");
  }
  drawSeen([]);
}

function showError(err) {
  result.dataset.state = "error";
  statusOut.textContent = `Could not classify the drawing: ${err.message}`;
}

async function showModel() {
  try {
    const response = await fetch("/healthz");
    const health = await response.json();
    const params =
      health.params === null ? "" : ` · ${health.params.toLocaleString("en")} parameters`;
    modelInfo.textContent = `Model ${health.model}${params} · input ${health.inputShape.join("×")}`;
    if (health.weights && health.weights !== "trained") {
      const warn = document.createElement("span");
      warn.className = "warn";
      warn.textContent = ` · untrained (${health.weights}): predictions are guesses`;
      modelInfo.append(warn);
    }
  } catch {
    modelInfo.textContent = "The server does not answer.";
  }
}

setupPad();
showEmpty();
showModel();
