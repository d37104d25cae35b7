// The page's files (src/runtime/serve/page/), read once at start-up and served from
// memory. Everything the page needs is served by us: no script, style or font from another host.
import { readFileSync } from "node:fs";
import { packagePath } from "../../paths.js";

export interface Asset {
  contentType: string;
  body: Buffer;
}

const PAGE_DIR = packagePath("src", "runtime", "serve", "page");

/** URL path → file in the page folder. */
const FILES: Record<string, [file: string, contentType: string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/page.css": ["page.css", "text/css; charset=utf-8"],
  "/page.js": ["page.js", "text/javascript; charset=utf-8"],
  "/favicon.svg": ["favicon.svg", "image/svg+xml"],
};

export function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, [file, contentType]] of Object.entries(FILES)) {
    assets.set(path, { contentType, body: readFileSync(`${PAGE_DIR}/${file}`) });
  }
  return assets;
}
