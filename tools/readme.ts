// `npm run docs:readme`: rewrites every CLI transcript in README.md from what the commands print
// now, so the README cannot go stale; `test/readme.test.ts` fails when the committed README is not
// what this writes.
//
// A transcript is a ```console block: lines `$ npx mnistc ARGS`, each followed by its output. The
// commands run as the installed `mnistc` would (dist/src/cli.js) from a scratch folder whose
// `specs`, `test` and `models` point into the package, so a command that writes a file writes it
// there. Output may be shortened with a line `  ...`: the lines before the first one are the
// output's first lines, and each run of lines after one starts at the output line equal to its
// first line (kept as the README has it) and is as long as the README's. The package's folder is
// written `/path/to/mnistc`, and figures that change from run to run (images per second) are masked
// the same way each time, so the test compares text.
import { spawnSync } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileSpec } from "../src/compiler/index.js";
import { packagePath, packageRoot } from "../src/paths.js";

const PROMPT = "$ npx mnistc ";
const ELIDED = "  ...";
export const ROOT_SHOWN = "/path/to/mnistc";

/** A command's output as the README shows it: the package root hidden, speeds rounded away. */
export function steady(text: string): string {
  // A linked node_modules (a git worktree's) prints as its real path: shown as the package's own.
  const modules = realpathSync(packagePath("node_modules"));
  return text
    .split(modules)
    .join(`${ROOT_SHOWN}/node_modules`)
    .split(packageRoot)
    .join(ROOT_SHOWN)
    .replace(/^(speed\s+)\d+( images\/s)/gm, "$1N$2");
}

/** The shortened form of `output` whose shape `shown` gives (see the header). */
export function shorten(output: string[], shown: string[]): string[] {
  const segments: string[][] = [[]];
  for (const line of shown) {
    if (line === ELIDED) segments.push([]);
    else segments.at(-1)?.push(line);
  }
  if (segments.length === 1) return output;
  const [head = [], ...rest] = segments;
  const result = output.slice(0, head.length);
  let at = head.length;
  for (const segment of rest) {
    result.push(ELIDED);
    if (segment.length === 0) continue;
    const start = output.indexOf(segment[0] as string, at);
    if (start < 0) throw new Error(`readme: the output no longer has the line ${segment[0]}`);
    result.push(...output.slice(start, start + segment.length));
    at = start + segment.length;
  }
  return result;
}

export type Runner = (args: string[]) => string;

/** Runs `mnistc ARGS` as a user would from a folder holding the package's specs, tests and models. */
export function cliRunner(): { run: Runner; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "mnistc-readme-"));
  for (const name of ["specs", "test", "models"]) symlinkSync(packagePath(name), join(dir, name));
  const cli = packagePath("dist", "src", "cli.js");
  const run: Runner = (args) => {
    const r = spawnSync(process.execPath, [cli, ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1", COLUMNS: "100" },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.error) throw r.error;
    return steady(`${r.stdout}${r.stderr}`).replace(/\n$/, "");
  };
  return { run, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Splits a shell line into words (double-quoted words kept whole; the README needs no more). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]) as string);
}

/** The README with every transcript's output replaced by what `run` prints now. */
export function regenerate(readme: string, run: Runner): string {
  const lines = readme.split("\n");
  const out: string[] = [];
  let inConsole = false;
  let command: string[] | undefined;
  let shown: string[] = [];
  const flush = () => {
    if (command) out.push(...shorten(run(command).split("\n"), shown));
    command = undefined;
    shown = [];
  };
  for (const line of lines) {
    if (!inConsole) {
      out.push(line);
      inConsole = line === "```console";
      continue;
    }
    if (line === "```" || line.startsWith(PROMPT)) {
      flush();
      out.push(line);
      if (line === "```") inConsole = false;
      else command = words(line.slice(PROMPT.length));
      continue;
    }
    if (command) shown.push(line);
    else out.push(line);
  }
  return out.join("\n");
}

const SPECS_BEGIN = "<!-- specs: written by npm run docs:readme from specs/*.yaml -->";
const SPECS_END = "<!-- /specs -->";

/** The first sentence of a spec's leading comment, after its `name:` prefix. */
function about(text: string): string {
  const comment = text
    .split("\n")
    .filter((l) => l.startsWith("# ") && !l.includes("yaml-language-server"))
    .map((l) => l.slice(2))
    .join(" ");
  const sentence = comment.replace(/^[\w-]+: /, "").match(/^.*?\.(?=\s|$)/)?.[0] ?? comment;
  return sentence.replace(/\|/g, "\\|");
}

/** The shipped specs as a table: name, dataset, parameters against the budget, MACs, what it is. */
export function specTable(): string {
  const rows = readdirSync(packagePath("specs"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((file) => {
      const text = readFileSync(packagePath("specs", file), "utf8");
      const { ir } = compileSpec(text, `specs/${file}`);
      if (!ir) throw new Error(`readme: specs/${file} does not compile`);
      const { trainable: params, macs } = ir.totals;
      const budget = ir.budget === undefined ? "" : ir.budget.toLocaleString("en-US");
      return `| [${ir.name}](specs/${file}) | ${ir.data.dataset} | ${params.toLocaleString("en-US")} | ${budget} | ${macs.toLocaleString("en-US")} | ${about(text)} |`;
    });
  return [
    "| spec | dataset | parameters | budget | MACs per image | what it is |",
    "|---|---|--:|--:|--:|---|",
    ...rows,
  ].join("\n");
}

/** The README with its spec table written anew from specs/. */
export function withSpecTable(readme: string): string {
  const begin = readme.indexOf(SPECS_BEGIN);
  const end = readme.indexOf(SPECS_END);
  if (begin < 0 || end < begin) throw new Error("readme: no spec table markers");
  return `${readme.slice(0, begin + SPECS_BEGIN.length)}\n${specTable()}\n${readme.slice(end)}`;
}

/** The commands of every transcript, as written. */
export function transcriptCommands(readme: string): string[] {
  return readme
    .split("\n")
    .filter((l) => l.startsWith(PROMPT))
    .map((l) => l.slice("$ ".length));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = packagePath("README.md");
  const { run, dispose } = cliRunner();
  try {
    writeFileSync(path, withSpecTable(regenerate(readFileSync(path, "utf8"), run)));
  } finally {
    dispose();
  }
  process.stdout.write(`wrote ${path}\n`);
}
