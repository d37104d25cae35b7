// Golden files: `expectGolden("params/step4.txt", text)` compares against test/golden/params/step4.txt.
// `UPDATE_GOLDEN=1` rewrites them (never in CI); a missing golden file is a failure, not a pass.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { packagePath } from "../../src/paths.js";

export const goldenDir = packagePath("test", "golden");

export function expectGolden(name: string, actual: string): void {
  const file = join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN === "1" && process.env.CI !== "true") {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `golden file ${file} is missing: run with UPDATE_GOLDEN=1`);
  assert.equal(actual, readFileSync(file, "utf8"), `output differs from golden file ${file}`);
}
