// The handlebars templates of the backends that write programs (tfjs, pytorch), read once from the
// package (`src/` holds them whether code runs from `dist/`). Code, not HTML: no escaping; and a
// field a template names but the context lacks throws.
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import { packagePath } from "../paths.js";

export type Template = (context: object) => string;
const compiled = new Map<string, Template>();

/** `src/backends/<backend>/templates/<name>`, compiled. */
export function template(backend: string, name: string): Template {
  const key = `${backend}/${name}`;
  let t = compiled.get(key);
  if (!t) {
    const text = readFileSync(packagePath("src", "backends", backend, "templates", name), "utf8");
    t = Handlebars.compile(text, { noEscape: true, strict: true });
    compiled.set(key, t);
  }
  return t;
}
