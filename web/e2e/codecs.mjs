// Browser test of the player's codec choice (docs/ARCHITECTURE.md, "The player"), driving
// Debian's Chromium (which decodes AV1 with dav1d) with playwright-core against a running
// `monsoon serve` whose film has an H.264 and an AV1 ladder (crates/monsoon/tests/browser.rs).
//
// hls.js plays AV1 where Media Source Extensions decode it, H.264 where `isTypeSupported` says
// no to `av01`; a slow first visit plays the H.264 floor natively; each heartbeat names the
// codec, and the dashboard shows the split. Environment: BASE_URL, FILM, ADMIN_TOKEN. Exits non-zero with a message on the first broken promise.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const FILM = env("FILM");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const step = (name) => console.log(`· ${name}`);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

/** Video segment and init URLs the page fetched (rendition directories `v<height>[-av1]/`),
 * and the heartbeats it sent. */
function record(page) {
  const seen = { video: [], beats: [] };
  page.on("request", (request) => {
    const url = request.url();
    if (/\/v\d+(-av1)?\/[^/]+\.(m4s|mp4)(\?|$)/.test(url)) seen.video.push(url);
    if (/\/heartbeat$/.test(url) && request.method() === "POST") {
      try { seen.beats.push(JSON.parse(request.postData())); } catch (e) { /* not JSON */ }
    }
  });
  return seen;
}

/** Waits for `seconds` of playing and an accepted-looking heartbeat with playing time. */
async function playing(page, seen, seconds) {
  await page.waitForFunction((s) => {
    const v = document.getElementById("player");
    return v && v.currentTime >= s && window.monsoonPlayer && window.monsoonPlayer.engine;
  }, seconds, { timeout: 60_000, polling: 200 });
  const deadline = Date.now() + 30_000;
  while (!seen.beats.some((b) => b.play_ms > 0) && Date.now() < deadline) await page.waitForTimeout(200);
  check(seen.beats.some((b) => b.play_ms > 0), "no heartbeat with playing time");
}

/** Opens the player's settings menu, as a viewer does (the controls show on pointer move). */
async function openSettings(page) {
  if (await page.locator("#c-menu").isVisible()) return;
  const box = await page.locator("#player").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3);
  await page.mouse.move(box.x + box.width / 2 + 5, box.y + box.height / 3);
  await page.click("#c-settings");
  await page.locator("#c-menu").waitFor();
}

async function hlsJsPlays(name, av1Decodes, family) {
  step(name);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  if (!av1Decodes) {
    // This browser as one without AV1: Media Source Extensions refuse `av01` (W3C MSE
    // `isTypeSupported`), before any script of the page runs.
    await context.addInitScript(() => {
      for (const ms of [window.MediaSource, window.ManagedMediaSource]) {
        if (!ms) continue;
        const real = ms.isTypeSupported.bind(ms);
        ms.isTypeSupported = (type) => !/av01/.test(type) && real(type);
      }
    });
  }
  const page = await context.newPage();
  const seen = record(page);
  await page.goto(`${BASE}/watch/${FILM}`, { waitUntil: "domcontentloaded" });
  await playing(page, seen, 3);
  const state = await page.evaluate(() => {
    const p = window.monsoonPlayer, h = p.hls, q = p.video.getVideoPlaybackQuality();
    return {
      engine: p.engine, codec: p.codec,
      levels: h.levels.map((l) => ({ height: l.height, codec: l.videoCodec })),
      current: h.levels[h.currentLevel] && h.levels[h.currentLevel].videoCodec,
      frames: q.totalVideoFrames,
      menu: Array.from(document.querySelectorAll("#c-quality option")).map((o) => o.value),
    };
  });
  const prefix = family === "av1" ? "av01." : "avc1.";
  check(state.engine === "hls.js", `${name}: played with ${state.engine}`);
  check(state.levels.length >= 2 && state.levels.every((l) => l.codec && l.codec.startsWith(prefix)),
    `${name}: hls.js was given levels of another family: ${JSON.stringify(state.levels)}`);
  check(state.current && state.current.startsWith(prefix), `${name}: plays ${state.current}`);
  check(state.frames > 0, `${name}: no frame decoded`);
  check(state.codec === family, `${name}: the player says ${state.codec}`);
  // The page's head fetches the H.264 floor's first segment for either engine (and the player
  // its init segment, for native HLS); every later one is the playing family's.
  const later = seen.video.filter((u) => /seg_\d+/.test(u) && !/seg_0+\./.test(u));
  check(later.length > 0, `${name}: no video segment past the first: ${JSON.stringify(seen.video)}`);
  check(later.every((u) => u.includes("-av1/") === (family === "av1")),
    `${name}: video fetched ${JSON.stringify(seen.video)}`);
  if (family === "h264") {
    check(seen.video.every((u) => !u.includes("-av1/")), `${name}: AV1 fetched ${JSON.stringify(seen.video)}`);
  }
  // The quality menu lists the playing family's rungs, each once, and a chosen rung plays
  // within the family.
  const heights = state.levels.map((l) => `h${l.height}`);
  const rungs = state.menu.filter((v) => /^h\d+$/.test(v));
  check(JSON.stringify(rungs) === JSON.stringify(heights),
    `${name}: quality menu ${JSON.stringify(state.menu)} for levels ${JSON.stringify(heights)}`);
  const top = heights[heights.length - 1];
  await openSettings(page);
  await page.selectOption("#c-quality", top);
  await page.waitForFunction((h) => {
    const hls = window.monsoonPlayer.hls, l = hls.levels[hls.currentLevel];
    return l && `h${l.height}` === h;
  }, top, { timeout: 30_000 });
  const after = await page.evaluate(() => {
    const hls = window.monsoonPlayer.hls;
    return hls.levels[hls.currentLevel].videoCodec;
  });
  check(after.startsWith(prefix), `${name}: the chosen rung plays ${after}`);
  check(seen.beats.every((b) => b.codec === undefined || b.codec === family)
    && seen.beats.some((b) => b.codec === family),
    `${name}: heartbeats name ${JSON.stringify(seen.beats.map((b) => b.codec))}`);
  await page.close(); // the final heartbeat
  await context.close();
  return seen;
}

await hlsJsPlays("hls.js where AV1 decodes: the AV1 ladder", true, "av1");
await hlsJsPlays("hls.js where AV1 does not: the H.264 ladder", false, "h264");

step("slow first visit: native HLS on the H.264 floor");
{
  const context = await browser.newContext({ viewport: { width: 412, height: 915 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 400, downloadThroughput: (300 * 1000) / 8, uploadThroughput: (300 * 1000) / 8,
  });
  const seen = record(page);
  await page.goto(`${BASE}/watch/${FILM}`, { waitUntil: "commit" });
  await playing(page, seen, 2);
  const state = await page.evaluate(() => ({
    engine: window.monsoonPlayer.engine, src: window.monsoonPlayer.video.src, codec: window.monsoonPlayer.codec,
  }));
  check(state.engine === "native" && state.src.startsWith("blob:"), `slow visit: ${JSON.stringify(state)}`);
  check(seen.video.length > 0 && seen.video.every((u) => !u.includes("-av1/")),
    `slow visit fetched ${JSON.stringify(seen.video)}`);
  check(state.codec === "h264" && seen.beats.some((b) => b.codec === "h264"),
    `slow visit: heartbeats name ${JSON.stringify(seen.beats.map((b) => b.codec))}`);
  await context.close();
}

// shaka-player over HLS and over DASH plays the AV1 ladder where asked to prefer AV1 (its
// `preferredVideoCodecs`): the AV1 variants of the multivariant playlist and the `video-av1`
// AdaptationSet of the MPD. The player is the npm package, served to a page on the server's
// own origin by a Playwright route (as web/e2e/clients.mjs does).
const SHAKA = fileURLToPath(new URL("../node_modules/shaka-player/dist/shaka-player.compiled.js", import.meta.url));
const film = await (await fetch(`${BASE}/api/v1/films/${FILM}`)).json();
for (const [name, url] of [["shaka over HLS", film.hls_url], ["shaka over DASH", film.dash_url]]) {
  step(`${name}: the AV1 ladder`);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route(`${BASE}/__codecs/shaka.js`, (route) =>
    route.fulfill({ contentType: "text/javascript", body: readFileSync(SHAKA, "utf8") }));
  await page.route(`${BASE}/__codecs/page.html`, (route) => route.fulfill({
    contentType: "text/html",
    body: `<!doctype html><meta charset="utf-8"><title>codecs</title>
<video id="v" muted playsinline width="640" height="360"></video><script src="/__codecs/shaka.js"></script>`,
  }));
  const seen = record(page);
  await page.goto(`${BASE}/__codecs/page.html`);
  await page.evaluate(async (manifest) => {
    /* global shaka */
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    await player.attach(document.getElementById("v"));
    player.configure({ preferredVideoCodecs: ["av01"] });
    window.errors = [];
    player.addEventListener("error", (e) => window.errors.push(e.detail && e.detail.code));
    await player.load(manifest);
    window.player = player;
    await document.getElementById("v").play();
  }, `${BASE}${url}`);
  await page.waitForFunction(() => document.getElementById("v").currentTime >= 4, null, { timeout: 60_000 });
  const state = await page.evaluate(() => {
    const active = window.player.getVariantTracks().find((t) => t.active);
    return {
      codec: active && active.videoCodec, height: active && active.height, errors: window.errors,
      frames: document.getElementById("v").getVideoPlaybackQuality().totalVideoFrames,
    };
  });
  check(state.codec && state.codec.startsWith("av01."), `${name} plays ${JSON.stringify(state)}`);
  check(state.frames > 0 && state.errors.length === 0, `${name}: ${JSON.stringify(state)}`);
  // Playing AV1: AV1 media segments fetched. (Over HLS, shaka 5 was seen to fetch the first
  // H.264 segments before settling on AV1; the playing track is what is checked.)
  const av1 = seen.video.filter((u) => /-av1\/seg_\d+/.test(u));
  check(av1.length >= 2, `${name} fetched ${JSON.stringify(seen.video)}`);
  await context.close();
}

// The figures split by codec: sessions of both families.
const stats = await (await fetch(`${BASE}/api/v1/films/${FILM}/stats`)).json();
check(stats.codecs && stats.codecs.av1 && stats.codecs.av1.sessions >= 1
  && stats.codecs.h264 && stats.codecs.h264.sessions >= 2,
  `the figures by codec: ${JSON.stringify(stats.codecs)}`);
console.log(JSON.stringify(stats.codecs));

step("dashboard: the split by codec");
{
  const admin = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "vi-VN" });
  const page = await admin.newPage();
  await page.goto(`${BASE}/admin`, { waitUntil: "domcontentloaded" });
  // The admin token's way in, behind its disclosure under the operator form.
  await page.click("details summary");
  await page.fill("#token", ADMIN_TOKEN);
  await Promise.all([page.waitForURL("**/admin?lang=*"), page.click('form:has(#token) button[type="submit"]')]);
  await page.selectOption("#film", FILM);
  await page.waitForFunction(() => document.querySelectorAll("#chart-codecs .rung").length === 2,
    null, { timeout: 15_000 });
  const rows = await page.$$eval("#chart-codecs .rung", (rs) => rs.map((r) => r.textContent));
  const sessions = (name, n) => rows.some((r) => r.startsWith(name) && r.includes(` ${n} `));
  check(sessions("AV1", stats.codecs.av1.sessions) && sessions("H.264", stats.codecs.h264.sessions),
    `the dashboard's codec rows: ${JSON.stringify(rows)}`);
  await admin.close();
}
await browser.close();
