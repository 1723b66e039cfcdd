// Builds web/dist: our assets from src/, the icons drawn by icons.mjs, plus hls.js, uPlot and
// tus-js-client from node_modules (never committed). Every file is fingerprinted (`player.3f9a1c2b7d.js`) so the server can cache it
// for a year, precompressed (.br, .gz) so no CPU is spent compressing per request, and listed
// in dist/manifest.json, which the server reads to write the fingerprinted URLs into pages.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { icons } from "./icons.mjs";

// Logical name (what templates ask for) → source file.
const assets = {
  "player.js": "src/player.js",
  "site.css": "src/site.css",
  // The viewer pages' own script: continue watching (home), share (film page).
  "site.js": "src/site.js",
  "admin.js": "src/admin.js",
  // `adminFetch`: the studio's requests with the session's CSRF token (crates/server/src/csrf.rs).
  "admin-fetch.js": "src/admin-fetch.js",
  "admin.css": "src/admin.css",
  // The studio's films (/admin/films): an ES module, and its styles.
  "studio.js": "src/studio.js",
  "studio.css": "src/studio.css",
  // The proof-of-work worker and the SHA-256 it loads (a worker cannot use crypto.subtle
  // outside secure contexts, and that call is async per hash).
  "proof.js": "src/proof.js",
  // Saving films for offline viewing (the page's side; the service worker is below).
  "offline.js": "src/offline.js",
  "sha256.js": "node_modules/js-sha256/build/sha256.min.js",
  // Resumable upload of a master from the studio (tus 1.0): our module, its hashing worker,
  // and tus-js-client's browser build (defines globalThis.tus).
  "upload.js": "src/upload.js",
  "upload-hash.js": "src/upload-hash.js",
  "tus.js": "node_modules/tus-js-client/dist/tus.min.js",
  // The full build: the light one cannot play alternate audio renditions, and every rung's
  // sound is one (CMAF: video and audio in separate playlists).
  "hls.js": "node_modules/hls.js/dist/hls.min.js",
  "uplot.js": "node_modules/uplot/dist/uPlot.iife.min.js",
  "uplot.css": "node_modules/uplot/dist/uPlot.min.css",
};

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
const manifest = {};
const files = Object.entries(assets).map(([name, source]) => [name, readFileSync(source)]);
for (const [name, bytes] of [...files, ...Object.entries(icons())]) {
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 10);
  const ext = extname(name);
  const file = `${basename(name, ext)}.${hash}${ext}`;
  writeFileSync(`dist/${file}`, bytes);
  manifest[name] = file;
  // PNGs (and the ICO holding them) are compressed already.
  if ([".png", ".ico"].includes(ext)) continue;
  writeFileSync(`dist/${file}.gz`, gzipSync(bytes, { level: 9 }));
  writeFileSync(
    `dist/${file}.br`,
    brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
}
// The service worker keeps one URL (its identity to the browser), revalidated by the server's
// `no-cache`; it is not in the manifest.
{
  const bytes = readFileSync("src/sw.js");
  writeFileSync("dist/sw.js", bytes);
  writeFileSync("dist/sw.js.gz", gzipSync(bytes, { level: 9 }));
  writeFileSync(
    "dist/sw.js.br",
    brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
}
writeFileSync("dist/manifest.json", JSON.stringify(manifest, null, 2) + "\n");
console.log(`web/dist built: ${Object.keys(manifest).length} assets`);
