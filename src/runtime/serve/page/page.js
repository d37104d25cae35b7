// The page. For a handwriting model (GET /api/model says preprocess "digit"): pointer strokes on a
// canvas, sent as a PNG to POST /api/predict as you draw. For any other model: an image file,
// picked or dropped, sent as it is. Either way the server prepares it exactly as `mnistc predict`
// would, and the answer fills the class, a bar per class (the top ten of more) and the image the
// model saw. Class names come from the model file, which may be hostile: they are only ever set as
// textContent, never parsed as HTML.

const pad = document.getElementById("pad");
const seen = document.getElementById("seen");
const clearButton = document.getElementById("clear");
const result = document.getElementById("result");
const digitOut = document.getElementById("digit");
const confidenceOut = document.getElementById("confidence");
const timingOut = document.getElementById("timing");
const statusOut = document.getElementById("status");
const modelInfo = document.getElementById("model-info");
const barList = document.getElementById("bars");
const seenCaption = document.getElementById("seen-caption");
const drawCard = document.getElementById("draw");
const uploadCard = document.getElementById("upload");
const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
const preview = document.getElementById("preview");

/** The model until GET /api/model answers: the shipped MNIST one, so drawing works at once. */
let model = {
  classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  inputShape: [1, 28, 28],
  preprocess: "digit",
  maxBodyBytes: 1024 * 1024,
  maxImagePixels: 2048 * 2048,
};
/** More classes than this: the bars show the most probable ones, best first. */
const MAX_BARS = 10;
let bars = [];

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
  if (event.key === "Escape" && !event.defaultPrevented && !drawCard.hidden) clearAll();
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

function className(c) {
  return model.classNames[c] ?? String(c);
}

/** One bar per class (at most MAX_BARS), names set as text. */
function buildBars() {
  const count = Math.min(model.classNames.length, MAX_BARS);
  barList.replaceChildren();
  bars = [];
  for (let k = 0; k < count; k++) {
    const li = document.createElement("li");
    for (const part of ["label", "track", "pct"]) {
      const span = document.createElement("span");
      span.className = part;
      if (part === "track") {
        const fill = document.createElement("span");
        fill.className = "fill";
        span.append(fill);
      }
      li.append(span);
    }
    barList.append(li);
    bars.push(li);
  }
  // Digits fit a narrow column; names get a wider one, cut with an ellipsis.
  barList.classList.toggle(
    "named",
    model.classNames.some((name) => name.length > 2),
  );
}

/** Classes in the bars' order: all of them by index, or the most probable ones when many. */
function barClasses(probabilities) {
  const all = model.classNames.map((_, c) => c);
  if (all.length <= MAX_BARS) return all;
  return all.sort((a, b) => (probabilities[b] ?? 0) - (probabilities[a] ?? 0)).slice(0, MAX_BARS);
}

function fillBars(probabilities, best) {
  const classes = barClasses(probabilities);
  bars.forEach((li, k) => {
    const c = classes[k];
    const p = probabilities[c] ?? 0;
    const label = li.querySelector(".label");
    label.textContent = className(c);
    label.title = className(c);
    li.querySelector(".fill").style.width = `${(p * 100).toFixed(2)}%`;
    li.querySelector(".pct").textContent = probabilities.length ? percent(p) : "0%";
    li.classList.toggle("best", c === best);
    li.dataset.class = String(c);
    if (probabilities.length) {
      li.dataset.probability = String(p);
      li.setAttribute("aria-label", `${className(c)}: ${percent(p)}`);
    } else {
      delete li.dataset.probability;
      li.removeAttribute("aria-label");
    }
  });
}

/** `latest`: the answer is for the drawing as it is now (else a newer request follows). */
function showPrediction(answer, latest) {
  const { probabilities, ms } = answer;
  const best = answer.class;
  statusOut.textContent = "";
  digitOut.textContent = className(best);
  digitOut.classList.toggle("long", className(best).length > 3);
  confidenceOut.textContent = `${percent(probabilities[best])} sure`;
  fillBars(probabilities, best);
  drawSeen(answer.input28 ?? answer.input ?? []);
  timingOut.textContent = `Server time (preprocessing and model): ${ms.toFixed(1)} ms`;
  result.dataset.state = latest ? "done" : "pending";
}

/** The C·H·W bytes the model saw: grey for one channel, RGB from the first three otherwise. */
function drawSeen(pixels) {
  const [c, h, w] = model.inputShape;
  if (seen.width !== w || seen.height !== h) {
    seen.width = w;
    seen.height = h;
  }
  const plane = h * w;
  const view = seen.getContext("2d");
  const image = view.createImageData(w, h);
  for (let i = 0; i < plane; i++) {
    const r = pixels[i] ?? 0;
    const rgb = c >= 3 ? [r, pixels[plane + i] ?? 0, pixels[2 * plane + i] ?? 0] : [r, r, r];
    image.data.set([...rgb, 255], 4 * i);
  }
  view.putImageData(image, 0, 0);
}

function showEmpty() {
  result.dataset.state = "empty";
  statusOut.textContent = "";
  digitOut.textContent = "–";
  digitOut.classList.remove("long");
  confidenceOut.textContent = drawCard.hidden
    ? "Choose an image to start"
    : "Draw something to start";
  timingOut.textContent = "";
  fillBars([], -1);
  drawSeen([]);
}

function showError(err) {
  result.dataset.state = "error";
  const what = drawCard.hidden ? "the image" : "the drawing";
  statusOut.textContent = `Could not classify ${what}: ${err.message}`;
}

// ---- an image file (models that are not handwriting models) ---------------------------------

let previewUrl;

/**
 * The file as the server takes it: PNG or JPEG within its limits as it is; anything else the
 * browser can decode (WebP, GIF, ...) or anything too large, drawn on a canvas and re-encoded
 * (scaled down to fit). A file the browser cannot decode (PGM) goes as it is: the server reads it.
 */
async function bodyFor(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return { body: file, note: "" };
  }
  const { width, height } = bitmap;
  const fits = file.size <= model.maxBodyBytes && width * height <= model.maxImagePixels;
  if (fits && (file.type === "image/png" || file.type === "image/jpeg")) {
    bitmap.close();
    return { body: file, note: "" };
  }
  const longest = fits ? Math.max(width, height) : 1024;
  const scale = Math.min(1, longest / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const encode = (type) => new Promise((resolve) => canvas.toBlob(resolve, type, 0.92));
  let body = await encode("image/png");
  if (!body || body.size > model.maxBodyBytes) body = await encode("image/jpeg");
  if (!body) throw new Error("the browser could not re-encode the image");
  const note = fits
    ? ""
    : ` (sent as a ${canvas.width}×${canvas.height} copy: the file is too large)`;
  return { body, note };
}

async function classifyFile(file) {
  if (!file) return;
  const asked = ++generation;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  preview.hidden = false;
  preview.src = previewUrl;
  result.dataset.state = "pending";
  statusOut.textContent = "";
  try {
    const { body, note } = await bodyFor(file);
    const response = await fetch("/api/predict", { method: "POST", body });
    const answer = await response.json();
    if (asked !== generation) return;
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showPrediction(answer, true);
    statusOut.textContent = note ? `${file.name}${note}` : "";
  } catch (err) {
    if (asked === generation) showError(err);
  }
}

// A browser cannot show a PGM: the preview goes, the answer still comes.
preview.addEventListener("error", () => {
  preview.hidden = true;
});
fileInput.addEventListener("change", () => classifyFile(fileInput.files[0]));
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  classifyFile(event.dataTransfer?.files[0]);
});
// A file dropped beside the zone must not make the browser leave the page to show it.
for (const type of ["dragover", "drop"]) {
  document.addEventListener(type, (event) => event.preventDefault());
}

// ---- the model -----------------------------------------------------------------------------

/** Drawing for a handwriting model, an image for any other; bars and captions for its classes. */
function adapt() {
  const [c, h, w] = model.inputShape;
  const draw = model.preprocess === "digit";
  drawCard.hidden = !draw;
  uploadCard.hidden = draw;
  const heading = draw ? "Draw a digit" : "Classify an image";
  document.getElementById("heading").textContent = heading;
  document.title = `mnistc · ${heading.toLowerCase()}`;
  if (!draw) {
    const colour = c === 1 ? ", in grey" : "";
    seenCaption.textContent = `What the model saw: ${c}×${h}×${w}, the whole picture resized to ${w}×${h}${colour}.`;
    seen.setAttribute("aria-label", `The ${w} by ${h} image the model saw`);
  }
  // A drawing already answered keeps its bars when the names are the ones it was shown with.
  const names = bars.map((li) => li.querySelector(".label").textContent);
  if (
    !draw ||
    model.classNames.length !== names.length ||
    model.classNames.some((n, i) => n !== names[i])
  ) {
    buildBars();
    showEmpty();
  }
}

async function showModel() {
  try {
    const response = await fetch("/api/model");
    const info = await response.json();
    model = info;
    const params = info.params === null ? "" : ` · ${info.params.toLocaleString("en")} parameters`;
    const dataset = info.dataset ? ` · ${info.dataset}` : "";
    modelInfo.textContent = `Model ${info.name}${dataset}${params} · input ${info.inputShape.join("×")}`;
    if (info.weights && info.weights !== "trained") {
      const warn = document.createElement("span");
      warn.className = "warn";
      warn.textContent = ` · untrained (${info.weights}): predictions are guesses`;
      modelInfo.append(warn);
    }
    adapt();
  } catch {
    modelInfo.textContent = "The server does not answer.";
  }
}

setupPad();
buildBars();
showEmpty();
showModel();
