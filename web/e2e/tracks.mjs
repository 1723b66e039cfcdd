// Browser test of tracks added to a published film (`monsoon add-track`; docs/INGEST.md,
// "Adding audio and subtitles"), driving Debian's Chromium with playwright-core against a
// running `monsoon serve` (crates/monsoon/tests/browser.rs): the player's audio menu lists the
// dub by its name beside the film's own language, choosing it plays the dub's segments, and
// the added subtitles show. Then the same film's DASH manifest in shaka-player: it lists the
// added language and subtitles beside the film's own, and choosing the dub plays its segments.
// Environment: BASE_URL, FILM, DUB (the dub's menu name). Exits non-zero with a message on the
// first broken promise.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const FILM = env("FILM");
const DUB = env("DUB");
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
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const audio = [];
  page.on("request", (r) => {
    const m = r.url().match(/\/media\/[^/]+\/[^/]+\/(a\d+[^/]*|o\d+[^/]*)\/seg_\d+\.m4s$/);
    if (m) audio.push(m[1]);
  });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));

  step("the watch page plays with hls.js");
  await page.goto(`${BASE}/watch/${FILM}`, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => {
    const p = window.monsoonPlayer;
    return p && p.video.currentTime >= 2;
  }, null, { timeout: 60_000, polling: 200 });
  // The quality menu moves the player to hls.js in place when it started natively.
  await page.click("#c-settings");
  await page.waitForFunction(() => window.monsoonPlayer.engine === "hls.js"
    || document.getElementById("c-audio").options.length > 1, null, { timeout: 30_000 });
  if (await page.evaluate(() => window.monsoonPlayer.engine) !== "hls.js") {
    await page.selectOption("#c-quality", { index: 1 });
    await page.waitForFunction(() => window.monsoonPlayer.engine === "hls.js", null, { timeout: 30_000 });
  }
  await page.waitForFunction(() => document.getElementById("c-audio").options.length > 1,
    null, { timeout: 30_000 });

  step("the audio menu lists the dub by its name");
  const names = await page.$$eval("#c-audio option", (os) => os.map((o) => o.textContent));
  check(names.includes(DUB) && names.includes("Tiếng Việt"), `audio choices: ${names}`);
  check(!(await page.locator("#c-audio-row").isHidden()), "the audio menu is hidden");

  step("choosing the dub plays its segments");
  const before = audio.length;
  await page.selectOption("#c-audio", DUB);
  await page.waitForFunction(() => {
    const hls = window.monsoonPlayer.hls;
    return hls.audioTrack >= 0 && hls.audioTracks[hls.audioTrack].lang === "en";
  }, null, { timeout: 15_000 });
  const deadline = Date.now() + 20_000;
  while (!audio.slice(before).some((r) => r.endsWith("-en")) && Date.now() < deadline) {
    await page.waitForTimeout(200);
  }
  check(audio.slice(before).some((r) => r.endsWith("-en")),
    `no segment of the dub fetched after choosing it: ${audio.slice(before)}`);
  const at = await page.evaluate(() => window.monsoonPlayer.video.currentTime);
  // Generous: in `make test` another browser test may hold both cores while this one decodes.
  await page.waitForFunction((t) => window.monsoonPlayer.video.currentTime >= t + 3, at,
    { timeout: 90_000 });

  step("the added subtitles show");
  const subs = await page.$$eval("#c-subs option", (os) => os.filter((o) => o.value).map((o) => o.value));
  check(subs.includes("en"), `subtitle choices: ${subs}`);
  await page.selectOption("#c-subs", "en");
  await page.waitForFunction(() => [...window.monsoonPlayer.video.textTracks].some((t) =>
    t.language === "en" && t.mode === "showing" && t.activeCues && t.activeCues.length > 0
    && [...t.activeCues].some((c) => c.text.includes("Hello"))), null, { timeout: 30_000 });
  console.log("tracks: the dub and the subtitles play");

  step("DASH: shaka-player lists the added language and subtitles and plays the dub");
  // A blank page of the server's origin (answered by the browser itself, so with no CSP) with
  // shaka from the web app's own dependencies.
  const dash = await context.newPage();
  await dash.route(`${BASE}/__dash/page.html`, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>DASH</title>" }));
  const dashAudio = [];
  dash.on("request", (r) => {
    const m = r.url().match(/\/media\/[^/]+\/[^/]+\/(a\d+[^/]*)\/seg_\d+\.m4s$/);
    if (m) dashAudio.push(m[1]);
  });
  await dash.goto(`${BASE}/__dash/page.html`);
  await dash.addScriptTag({
    path: new URL("../node_modules/shaka-player/dist/shaka-player.compiled.js", import.meta.url).pathname,
  });
  await dash.evaluate(async (url) => {
    /* global shaka */
    shaka.polyfill.installAll();
    const video = document.createElement("video");
    video.muted = true;
    document.body.appendChild(video);
    const player = new shaka.Player();
    await player.attach(video);
    window.dashPlayer = player;
    window.dashVideo = video;
    try {
      await player.load(url);
    } catch (e) {
      throw new Error(`shaka could not load ${url}: error ${e.code} ${JSON.stringify(e.data)}`);
    }
    await video.play();
  }, `${BASE}/media/${FILM}/manifest.mpd`);
  const languages = await dash.evaluate(() =>
    window.dashPlayer.getAudioTracks().map((t) => t.language));
  check(languages.includes("en") && languages.includes("vi"), `DASH audio languages: ${languages}`);
  const texts = await dash.evaluate(() => window.dashPlayer.getTextTracks().map((t) => t.language));
  check(texts.includes("en"), `DASH subtitle languages: ${texts}`);
  const dashBefore = dashAudio.length;
  await dash.evaluate(() => {
    const player = window.dashPlayer;
    player.selectAudioTrack(player.getAudioTracks().find((t) => t.language === "en"));
  });
  const dashDeadline = Date.now() + 30_000;
  while (!dashAudio.slice(dashBefore).some((r) => r.endsWith("-en")) && Date.now() < dashDeadline) {
    await dash.waitForTimeout(200);
  }
  check(dashAudio.slice(dashBefore).some((r) => r.endsWith("-en")),
    `DASH: no segment of the dub fetched after choosing it: ${dashAudio.slice(dashBefore)}`);
  const dashAt = await dash.evaluate(() => window.dashVideo.currentTime);
  await dash.waitForFunction((t) => window.dashVideo.currentTime >= t + 3, dashAt,
    { timeout: 90_000 });
  console.log("tracks: DASH lists and plays the dub");
} finally {
  await browser.close();
}
