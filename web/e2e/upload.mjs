// Browser test of the studio's upload module (web/src/upload.js, tus-js-client) against a
// running `monsoon serve` (crates/monsoon/tests/browser.rs): an operator signs in, picks a
// master, the network is cut mid-upload (`context.setOffline`) and the page reloaded; picking
// the same file again resumes from the offset the server has (the next PATCH starts past 0,
// no second upload is created) and the upload ends `ready`, checked by the server against the
// SHA-256 the page computed. The page is a harness served on the server's own origin under the
// pages' Content-Security-Policy, so the module, its worker and its requests run under it.
// Environment: BASE_URL, ADMIN_TOKEN, MASTER (a file path). Exits non-zero with a message on
// the first broken promise.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const MASTER = env("MASTER");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const step = (name) => console.log(`· ${name}`);
const assets = JSON.parse(readFileSync(new URL("../dist/manifest.json", import.meta.url)));
const asset = (name) => `/static/${assets[name]}`;
const size = readFileSync(MASTER).length;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
});
const context = await browser.newContext();
const violations = [];
const page = await context.newPage();
page.on("console", (m) => {
  if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
});
page.on("pageerror", (e) => violations.push(`page error: ${e.message}`));

step("sign in");
await page.goto(`${BASE}/admin/login`, { waitUntil: "domcontentloaded" });
await page.click("details summary");
await page.fill("#token", ADMIN_TOKEN);
await Promise.all([page.waitForURL("**/admin?lang=*"), page.click('form:has(#token) button[type="submit"]')]);
// The policy the pages carry, for the harness.
const csp = (await (await page.request.get(`${BASE}/admin`)).headers())["content-security-policy"];
check(csp && csp.includes("script-src 'self'"), `no policy on /admin: ${csp}`);
// The session's CSRF token, as a studio page carries it (the module sends it with each PATCH).
const csrf = await page.$eval('meta[name="csrf-token"]', (m) => m.content);

// The harness: a file input, the config as a data block, and a module script of its own.
const HARNESS = `${BASE}/admin/__upload-harness`;
await context.route(HARNESS, (route) =>
  route.fulfill({
    contentType: "text/html; charset=utf-8",
    headers: { "content-security-policy": csp },
    body: `<!doctype html><meta charset="utf-8"><title>upload</title>
<meta name="csrf-token" content="${csrf}">
<input type="file" id="file">
<script type="application/json" id="config">${JSON.stringify({
      upload: asset("upload.js"),
      hashWorker: asset("upload-hash.js"),
      sha256: asset("sha256.js"),
    })}</script>
<script src="${asset("tus.js")}"></script>
<script type="module" src="/admin/__upload-harness.js"></script>`,
  }),
);
await context.route(`${HARNESS}.js`, (route) =>
  route.fulfill({
    contentType: "text/javascript",
    body: `
const config = JSON.parse(document.getElementById("config").textContent);
const { startUpload } = await import(config.upload);
window.state = { progress: [], error: null, done: null };
window.go = () => {
  const file = document.getElementById("file").files[0];
  window.upload = startUpload(file, {
    hashWorker: config.hashWorker,
    sha256: config.sha256,
    onProgress: (p) => window.state.progress.push(p),
    onError: (m) => { window.state.error = m; },
    onSuccess: (v) => { window.state.done = v; },
  });
};
window.ready = true;`,
  }),
);

// Every PATCH the page sends, with its offset.
const patches = [];
const creations = [];
page.on("request", (r) => {
  if (!r.url().includes("/admin/api/uploads")) return;
  if (r.method() === "PATCH") patches.push(Number(r.headers()["upload-offset"]));
  if (r.method() === "POST") creations.push(r.url());
});

async function pickAndStart() {
  await page.goto(HARNESS, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.ready === true, null, { timeout: 15_000 });
  await page.setInputFiles("#file", MASTER);
  await page.evaluate(() => window.go());
}

step("upload, throttled");
const cdp = await context.newCDPSession(page);
// 1 MB/s up: the cut lands mid-file.
await cdp.send("Network.emulateNetworkConditions", {
  offline: false,
  latency: 20,
  downloadThroughput: 10_000_000,
  uploadThroughput: 1_000_000,
});
await pickAndStart();
// Wait until the server has a part of the file, then cut the network.
const listing = async () => (await page.request.get(`${BASE}/admin/api/uploads`)).json();
let upload = null;
for (const until = Date.now() + 60_000; Date.now() < until; ) {
  const list = await listing();
  upload = list.uploads[0];
  if (upload && upload.offset > 0 && upload.offset < size / 2) break;
  if (upload && upload.offset >= size / 2) throw new Error("the upload was too fast to cut mid-way");
  await page.waitForTimeout(100);
}
check(upload && upload.offset > 0, "no byte reached the server");
step(`cut at about ${upload.offset} of ${size} bytes`);
await context.setOffline(true);
await page.waitForTimeout(1500);
await context.setOffline(false);

step("reload and pick the same file");
const patchesBefore = patches.length;
await page.reload({ waitUntil: "domcontentloaded" });
await cdp.send("Network.emulateNetworkConditions", {
  offline: false,
  latency: 0,
  downloadThroughput: -1,
  uploadThroughput: -1,
});
await pickAndStart();
await page.waitForFunction(() => window.state.done || window.state.error, null, {
  timeout: 120_000,
});
const state = await page.evaluate(() => window.state);
check(!state.error, `the upload failed: ${state.error}`);
check(state.done.state === "ready", `not ready: ${JSON.stringify(state.done)}`);
check(state.done.filename === basename(MASTER), `file name ${state.done.filename}`);
check(state.done.probe && state.done.probe.video_codec === "h264", JSON.stringify(state.done));
const resumed = patches.slice(patchesBefore);
check(resumed.length > 0 && resumed[0] > 0, `after the reload, PATCHes at ${resumed} (before: ${patches.slice(0, patchesBefore)})`);
check(creations.length === 1, `${creations.length} uploads created; the reload should resume the first`);
const phases = new Set(state.progress.map((p) => p.phase));
check(phases.has("hashing") && phases.has("uploading") && phases.has("checking"), `phases ${[...phases]}`);
check(violations.length === 0, `policy violations or errors: ${violations.join("; ")}`);
const after = await listing();
check(after.uploads.length === 1 && after.uploads[0].state === "ready", JSON.stringify(after));
console.log(JSON.stringify({ size, cut_at: upload.offset, resumed_from: resumed[0], id: state.done.id }));
await browser.close();
