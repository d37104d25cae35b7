// Small statistics for bench scripts: median/mean of timings and a per-kernel profile summary.

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] as number;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] as number) + hi) / 2;
}

export function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

export interface KernelTime {
  name: string;
  ms: number;
  calls: number;
}

interface ProfiledKernel {
  name: string;
  kernelTimeMs: number | { error: string } | Promise<number | { error: string }>;
}

/**
 * Total time per kernel name, largest first. `isKernel` drops the entries tf.profile also records
 * for composite functions (customGrad, fused ops) whose inner kernels are listed on their own.
 */
export async function topKernels(
  profiled: ProfiledKernel[],
  isKernel: (name: string) => boolean,
  limit = 15,
): Promise<KernelTime[]> {
  const byName = new Map<string, KernelTime>();
  for (const k of profiled) {
    if (!isKernel(k.name)) continue;
    const ms = await k.kernelTimeMs;
    if (typeof ms !== "number") continue;
    const entry = byName.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls += 1;
    byName.set(k.name, entry);
  }
  return [...byName.values()].sort((a, b) => b.ms - a.ms).slice(0, limit);
}
