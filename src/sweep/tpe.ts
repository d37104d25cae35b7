// The tree-structured Parzen estimator (Bergstra, Bardenet, Bengio and Kégl, "Algorithms for
// Hyper-Parameter Optimization", NIPS 2011), as hyperopt's `tpe.suggest` does it with independent
// dimensions: the finished trials split into the best `gamma` fraction and the rest; per dimension
// a Parzen density l(x) over the good values and g(x) over the others (each with the prior as one
// more component), `candidates` draws from l, and the draw with the highest l(x)/g(x) is proposed.
// Written here because no npm package offers it as a proposal from a record (ask, not a loop that
// runs the objective itself), which a sweep of child processes that resumes after a kill needs.
import type { Rng } from "../util/rng.js";
import { type Dim, drawPrior, type Params, type Scalar } from "./space.js";

export interface Observation {
  params: Params;
  /** Higher is better. */
  value: number;
}

export interface TpeOptions {
  /** The fraction of observations that make l(x) (hyperopt's 0.25). */
  gamma?: number;
  /** Draws from l(x) per dimension (hyperopt's 24). */
  candidates?: number;
}

export function tpePoint(
  space: Dim[],
  history: Observation[],
  rng: Rng,
  options: TpeOptions = {},
): Params {
  const gamma = options.gamma ?? 0.25;
  const candidates = options.candidates ?? 24;
  const sorted = [...history].sort((a, b) => b.value - a.value);
  const nGood = Math.max(1, Math.ceil(gamma * sorted.length));
  const good = sorted.slice(0, nGood);
  const bad = sorted.slice(nGood);
  const params: Params = {};
  for (const d of space) {
    const g = good.map((o) => o.params[d.path]).filter((v) => v !== undefined) as Scalar[];
    const b = bad.map((o) => o.params[d.path]).filter((v) => v !== undefined) as Scalar[];
    params[d.path] =
      d.kind === "choice"
        ? pickChoice(d.values, g, b, rng, candidates)
        : pickNumber(d, g as number[], b as number[], rng, candidates);
  }
  return params;
}

function pickChoice(
  values: Scalar[],
  good: Scalar[],
  bad: Scalar[],
  rng: Rng,
  candidates: number,
): Scalar {
  // Counts plus one for the prior (each value once).
  const weights = (obs: Scalar[]) => {
    const w = values.map((v) => 1 + obs.filter((o) => o === v).length);
    const total = w.reduce((s, x) => s + x, 0);
    return w.map((x) => x / total);
  };
  const l = weights(good);
  const g = weights(bad);
  let best = 0;
  let bestScore = -Infinity;
  for (let c = 0; c < candidates; c++) {
    let u = rng.next();
    let k = 0;
    while (k < l.length - 1 && u >= (l[k] as number)) u -= l[k++] as number;
    const score = Math.log(l[k] as number) - Math.log(g[k] as number);
    if (score > bestScore) {
      bestScore = score;
      best = k;
    }
  }
  return values[best] as Scalar;
}

/** A Parzen density on [lo, hi]: Gaussians at the observations and the prior, each truncated. */
export interface Parzen {
  mus: number[];
  sigmas: number[];
  lo: number;
  hi: number;
}

/** hyperopt's adaptive Parzen estimator: each bandwidth the larger gap to a neighbour, clipped. */
export function parzen(obs: number[], lo: number, hi: number): Parzen {
  const width = hi - lo;
  const mus = [...obs, (lo + hi) / 2].sort((a, b) => a - b);
  const minSigma = width / Math.min(100, 1 + obs.length);
  const sigmas = mus.map((mu, i) => {
    if (obs.length === 0) return width;
    const left = mu - (mus[i - 1] ?? lo);
    const right = (mus[i + 1] ?? hi) - mu;
    return Math.min(width, Math.max(minSigma, left, right));
  });
  // The prior's own component keeps the whole range's width.
  const prior = mus.indexOf((lo + hi) / 2);
  sigmas[prior] = width;
  return { mus, sigmas, lo, hi };
}

const SQRT2 = Math.sqrt(2);

/** erf, Abramowitz and Stegun 7.1.26 (error below 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}

const cdf = (x: number, mu: number, s: number) => 0.5 * (1 + erf((x - mu) / (s * SQRT2)));

export function parzenDensity(p: Parzen, x: number): number {
  let sum = 0;
  for (let i = 0; i < p.mus.length; i++) {
    const mu = p.mus[i] as number;
    const s = p.sigmas[i] as number;
    const z = cdf(p.hi, mu, s) - cdf(p.lo, mu, s);
    sum += Math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * Math.sqrt(2 * Math.PI) * Math.max(z, 1e-12));
  }
  return sum / p.mus.length;
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

export function parzenDraw(p: Parzen, rng: Rng): number {
  const i = rng.int(p.mus.length);
  const mu = p.mus[i] as number;
  const s = p.sigmas[i] as number;
  for (let tries = 0; tries < 100; tries++) {
    const x = mu + s * gaussian(rng);
    if (x >= p.lo && x <= p.hi) return x;
  }
  return Math.min(p.hi, Math.max(p.lo, mu));
}

function pickNumber(
  d: Dim & { kind: "int" | "uniform" | "loguniform" },
  good: number[],
  bad: number[],
  rng: Rng,
  candidates: number,
): number {
  const log = d.kind === "loguniform";
  const to = (v: number) => (log ? Math.log(v) : v);
  // An int range is the real interval around its integers, rounded back.
  const lo = d.kind === "int" ? d.low - 0.5 : to(d.low);
  const hi = d.kind === "int" ? d.high + 0.5 : to(d.high);
  if (good.length === 0 && bad.length === 0) return drawPrior(d, rng) as number;
  const l = parzen(good.map(to), lo, hi);
  const g = parzen(bad.map(to), lo, hi);
  let best = l.mus[0] as number;
  let bestScore = -Infinity;
  for (let c = 0; c < candidates; c++) {
    const x = parzenDraw(l, rng);
    const score = Math.log(parzenDensity(l, x)) - Math.log(parzenDensity(g, x));
    if (score > bestScore) {
      bestScore = score;
      best = x;
    }
  }
  if (d.kind === "int") return Math.min(d.high, Math.max(d.low, Math.round(best)));
  return log ? Math.exp(best) : best;
}
