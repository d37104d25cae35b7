// Placeholder replaced below.
import type { Sweep } from "../sweep/file.js";
import type { SweepCliOptions } from "./sweep.js";

export async function emitOptuna(_s: Sweep, _f: string, _o: SweepCliOptions): Promise<number> {
  return 1;
}
