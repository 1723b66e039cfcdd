// Every major browser client plays a Monsoon film through every switch: hls.js (the site's
// player), shaka-player over HLS and over DASH, dash.js over DASH, and the browser's own HLS
// playback where it has one. Debian's Chromium, driven by playwright-core, against a running
// `monsoon serve` (started by crates/monsoon/tests/clients.rs).
//
// The players are the npm packages in web/node_modules, served to the page on the server's own
// origin by Playwright routes under /__harness/ (nothing is copied into the repository and the
// server is not changed): a page on the origin needs no CORS, and a routed page carries no
// Content-Security-Policy of the viewer app's.
//
// Each client: start, switch down to the floor, switch up to the top rung (with the other audio
// rendition where the stream pairs them), switch the audio rendition alone where the client
// offers that, seek forward and back, and play the audio-only rendition; about 20 s of media in
// all. A stall fails the test: the playhead must advance, no `waiting` may last longer than
// STALL_MS, and every step must reach its position. Switches are the immediate kind (buffer
// cleared), the harshest a player offers.
//
// Environment: BASE_URL, FILM (slug), ARTIFACTS (directory for report.json), CHROMIUM,
// CLIENTS (optional comma-separated subset of: hlsjs, shaka-hls, shaka-dash, dashjs, native),
// DEBUG_REQUESTS=1 (optional: print every request and console line of the pages).
// Exits non-zero naming the client and step on the first broken promise.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const FILM = env("FILM");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// Generous: the suite runs on 2 shared cores. A player that recovers at all does so in a few
// seconds; the defects this catches never recover.
const STALL_MS = 12_000;
mkdirSync(ARTIFACTS, { recursive: true });

// Straight from web/node_modules (dashjs's package exports do not list its browser bundle).
const modules = (path) => fileURLToPath(new URL(`../node_modules/${path}`, import.meta.url));
const LIBS = {
  "hls.js": modules("hls.js/dist/hls.min.js"),
  "shaka.js": modules("shaka-player/dist/shaka-player.compiled.js"),
  "dash.js": modules("dashjs/dist/modern/umd/dash.all.min.js"),
};

/**
 * The in-page side, serialised into the harness page: one adapter per client with the same
 * small interface, and the stall-watching playhead helpers.
 */
function harness() {
  const video = document.getElementById("v");
  const errors = [];
  const waits = [];
  let waitingSince = null;
  video.addEventListener("waiting", () => {
    if (waitingSince === null) waitingSince = performance.now();
  });
  const waited = () => {
    if (waitingSince !== null) {
      waits.push(Math.round(performance.now() - waitingSince));
      waitingSince = null;
    }
  };
  video.addEventListener("playing", waited);
  video.addEventListener("timeupdate", () => {
    if (!video.paused && !video.seeking && video.readyState >= 3) waited();
  });
  video.addEventListener("error", () => errors.push(`video element: ${video.error && video.error.message}`));

  /** Resolves once an event fires on `target` (an EventTarget or an hls.js/dash.js emitter). */
  const once = (on, name) => new Promise((resolve) => on(name, resolve));

  const adapters = {
    hlsjs: {
      async load(url) {
        // eslint-disable-next-line no-undef
        const hls = new Hls({ enableWorker: true });
        // eslint-disable-next-line no-undef
        hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(`hls.js: ${d.details}`); });
        hls.loadSource(url);
        hls.attachMedia(video);
        // eslint-disable-next-line no-undef
        await once((n, f) => hls.once(n, f), Hls.Events.MANIFEST_PARSED);
        this.hls = hls;
      },
      levels() {
        return this.hls.levels.map((l, i) => ({
          key: i,
          height: l.height,
          audio: (l.audioGroups && l.audioGroups[0]) || (l.attrs && l.attrs.AUDIO) || null,
          codec: l.videoCodec || "",
        }));
      },
      // Immediate switch: flushes the buffer and loads the new level (hls.js API).
      select(key) { this.hls.currentLevel = key; },
    },
    shaka: {
      async load(url) {
        /* global shaka */
        shaka.polyfill.installAll();
        const player = new shaka.Player();
        await player.attach(video);
        player.configure({ abr: { enabled: false } });
        player.addEventListener("error", (e) => errors.push(`shaka: ${e.detail && e.detail.code}`));
        await player.load(url);
        this.player = player;
      },
      levels() {
        return this.player.getVariantTracks().filter((t) => t.height).map((t) => ({
          key: t.id,
          height: t.height,
          audio: t.originalAudioId || t.audioGroupId || String(t.audioId),
          active: t.active,
          codec: t.videoCodec || "",
        }));
      },
      // clearBuffer = true: what a quality menu does (shaka.Player#selectVariantTrack).
      select(key) {
        const track = this.player.getVariantTracks().find((t) => t.id === key);
        this.player.selectVariantTrack(track, true);
      },
    },
    dashjs: {
      async load(url) {
        /* global dashjs */
        const player = dashjs.MediaPlayer().create();
        player.updateSettings({
          streaming: { abr: { autoSwitchBitrate: { video: false, audio: false } } },
        });
        player.on(dashjs.MediaPlayer.events.ERROR, (e) =>
          errors.push(`dash.js: ${JSON.stringify(e.error && (e.error.message || e.error.code))}`));
        const ready = once((n, f) => player.on(n, f), dashjs.MediaPlayer.events.STREAM_INITIALIZED);
        player.initialize(video, url, false);
        await ready;
        this.player = player;
      },
      // dash.js chooses video and audio apart: a "level" here is one of each.
      levels() {
        const videos = this.player.getRepresentationsByType("video");
        const audios = this.player.getRepresentationsByType("audio");
        const current = this.player.getCurrentRepresentationForType("audio");
        return videos.flatMap((v) => (audios.length ? audios : [null]).map((a) => ({
          key: [v.id, a && a.id],
          height: v.height,
          codec: v.codecs || "",
          audio: a && a.id,
          active: !!a && !!current && a.id === current.id,
        })));
      },
      // forceReplace = true: the buffered media of the old representation is replaced now.
      select([videoId, audioId]) {
        this.player.setRepresentationForTypeById("video", videoId, true);
        const current = this.player.getCurrentRepresentationForType("audio");
        if (audioId && (!current || current.id !== audioId)) {
          this.player.setRepresentationForTypeById("audio", audioId, true);
        }
      },
    },
    native: {
      async load(url) {
        video.src = url;
        await once((n, f) => video.addEventListener(n, f, { once: true }), "loadedmetadata");
      },
      // The element picks its renditions itself: nothing to select from a page.
      levels() { return []; },
      select() { throw new Error("native HLS has no rendition API"); },
    },
  };

  window.H = {
    errors,
    waits,
    canPlayNativeHls: () => video.canPlayType("application/vnd.apple.mpegurl"),
    async load(kind, url) {
      this.client = adapters[kind];
      await this.client.load(url);
      await video.play();
    },
    levels() { return this.client.levels(); },
    select(key) { this.client.select(key); },
    seek(t) { video.currentTime = t; },
    state() {
      return { t: video.currentTime, height: video.videoHeight, paused: video.paused,
        ended: video.ended, readyState: video.readyState, errors: errors.slice(),
        waitingMs: waitingSince === null ? 0 : Math.round(performance.now() - waitingSince) };
    },
    /**
     * Resolves when the playhead reaches `target`; rejects when it has not moved for stallMs,
     * a `waiting` lasts longer than that, or the player reported a fatal error.
     */
    playUntil(target, stallMs) {
      return new Promise((resolve, reject) => {
        let last = video.currentTime;
        let movedAt = performance.now();
        const tick = () => {
          const now = performance.now();
          if (errors.length) return reject(new Error(`player error: ${errors.join("; ")}`));
          if (video.currentTime >= target) return resolve(video.currentTime);
          if (video.currentTime !== last) {
            last = video.currentTime;
            movedAt = now;
          }
          const waiting = waitingSince === null ? 0 : now - waitingSince;
          if (now - movedAt > stallMs || waiting > stallMs) {
            const b = [];
            for (let i = 0; i < video.buffered.length; i++) {
              b.push(`${video.buffered.start(i).toFixed(2)}-${video.buffered.end(i).toFixed(2)}`);
            }
            return reject(new Error(`stalled at ${video.currentTime.toFixed(2)} s on the way to ` +
              `${target} s (no progress for ${Math.round(now - movedAt)} ms; buffered ${b.join(",") || "nothing"})`));
          }
          setTimeout(tick, 100);
        };
        tick();
      });
    },
  };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

const check = (ok, message) => {
  if (!ok) throw new Error(message);
};

/** A page on the server's origin with `lib` (a key of LIBS, or none) and the harness. */
async function harnessPage(context, lib) {
  const page = await context.newPage();
  for (const [name, path] of Object.entries(LIBS)) {
    await page.route(`${BASE}/__harness/${name}`, (route) =>
      route.fulfill({ contentType: "text/javascript", body: readFileSync(path, "utf8") }));
  }
  await page.route(`${BASE}/__harness/harness.js`, (route) =>
    route.fulfill({ contentType: "text/javascript", body: `(${harness})();` }));
  await page.route(`${BASE}/__harness/page.html`, (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<!doctype html><meta charset="utf-8"><title>clients</title>
<video id="v" muted playsinline width="640" height="360"></video>
${lib ? `<script src="/__harness/${lib}"></script>` : ""}
<script src="/__harness/harness.js"></script>`,
    }));
  // Media requests, to see which renditions a player fetched after a switch.
  const requests = [];
  if (process.env.DEBUG_REQUESTS) page.on("request", (r) => console.log(`  ${lib} req ${r.url().replace(BASE, "")}`));
  if (process.env.DEBUG_REQUESTS) page.on("console", (m) => console.log(`  ${lib} console ${m.text()}`));
  page.on("request", (r) => {
    const m = r.url().match(/\/media\/[^/]+\/[^/]+\/([^/]+)\/seg_\d+\.m4s$/);
    if (m) requests.push({ at: Date.now(), rendition: m[1] });
  });
  await page.goto(`${BASE}/__harness/page.html`);
  return { page, requests };
}

const CLIENTS = [
  { name: "hlsjs", lib: "hls.js", adapter: "hlsjs", manifest: "hls" },
  { name: "shaka-hls", lib: "shaka.js", adapter: "shaka", manifest: "hls" },
  { name: "shaka-dash", lib: "shaka.js", adapter: "shaka", manifest: "dash" },
  { name: "dashjs", lib: "dash.js", adapter: "dashjs", manifest: "dash" },
  { name: "native", lib: null, adapter: "native", manifest: "hls" },
];
const only = process.env.CLIENTS ? process.env.CLIENTS.split(",") : null;

const film = await (await fetch(`${BASE}/api/v1/films/${FILM}`)).json();
const urls = { hls: `${BASE}${film.hls_url}`, dash: `${BASE}${film.dash_url}` };
// The audio-only variant of the multivariant playlist: the STREAM-INF with no RESOLUTION.
const master = await (await fetch(urls.hls)).text();
// A film with an AV1 ladder beside H.264: every client but the browser's own HLS is given the
// playlist with both families and must keep to one of them; Chromium's own HLS switches
// variants by bandwidth across CODECS (its MSE pipeline then refuses the new codec), so it is
// given the H.264 family's own playlist, which Monsoon publishes for such clients
// (docs/ORIGIN.md, "One playlist per codec family").
const twoFamilies = master.includes('CODECS="av01') && master.includes('CODECS="avc1');
if (twoFamilies) urls.native = urls.hls.replace(/master\.m3u8$/, "master-h264.m3u8");
/** A video rendition's codec family, from its directory name (`v360` or `v360-av1`). */
const familyOf = (rendition) => (rendition.endsWith("-av1") ? "av1" : "h264");
const isVideo = (rendition) => /^v\d+/.test(rendition);
const lines = master.split("\n");
const audioOnlyAt = lines.findIndex((l) => l.startsWith("#EXT-X-STREAM-INF") && !l.includes("RESOLUTION"));
check(audioOnlyAt >= 0, `the multivariant playlist offers no audio-only variant:\n${master}`);
const audioOnlyUrl = `${BASE}/media/${FILM}/${lines[audioOnlyAt + 1].trim()}`;
const duration = film.duration_s;
check(duration >= 34, `the film lasts ${duration} s; the scenario needs 34`);

/** One client through every step; returns its row of the matrix. */
async function run(client, context) {
  const row = { client: client.name };
  const { page, requests } = await harnessPage(context, client.lib);
  const log = (s) => console.log(`· ${client.name}: ${s}`);
  const H = (fn, arg) => page.evaluate(fn, arg);
  const playUntil = async (step, target) => {
    try {
      await H(([t, ms]) => window.H.playUntil(t, ms), [target, STALL_MS]);
    } catch (e) {
      throw new Error(`${client.name}, ${step}: ${e.message}`);
    }
  };
  /** The renditions whose segments were requested since `since`. */
  const fetchedSince = (since) => new Set(requests.filter((r) => r.at >= since).map((r) => r.rendition));

  if (client.adapter === "native") {
    const can = await H(() => window.H.canPlayNativeHls());
    if (!can) {
      const reason = `this Chromium has no native HLS (canPlayType answered "${can}")`;
      log(`SKIPPED: ${reason}`);
      await page.close();
      return { ...row, skipped: reason };
    }
    row.canPlayType = can;
  }

  await H(([kind, url]) => window.H.load(kind, url), [client.adapter, urls[client.adapter] || urls[client.manifest]]);
  await playUntil("start", 4);
  row.start = "pass";
  // The codec family the client plays once started (its latest video segment): it must keep
  // to it from there on (HLS authoring spec §1.23). What it fetched of another family before
  // settling is reported, not failed.
  const startedAt = Date.now();
  const lastVideo = requests.filter((r) => isVideo(r.rendition)).pop();
  check(lastVideo, `${client.name}: no video segment fetched before playing 4 s`);
  const family = familyOf(lastVideo.rendition);
  const suffix = family === "av1" ? "-av1" : "";
  row.family = family;
  const early = [...new Set(requests.map((r) => r.rendition).filter((r) => isVideo(r) && familyOf(r) !== family))];
  if (early.length) row.before_start = `also fetched ${early.join(", ")} before settling on ${family}`;

  // A level's audio as the rendition's name: shaka names an HLS rendition by its playlist URI.
  // Only the levels of the family being played: a quality menu offers those (the site's
  // player keeps one family; selecting another family's level would be the harness's switch).
  const levels = (await H(() => window.H.levels())).map((l) => ({
    ...l, audio: l.audio && (l.audio.match(/([^/]+)\/[^/]*\.m3u8$/)?.[1] ?? l.audio) }))
    .filter((l) => !l.codec || l.codec.startsWith("av01") === (family === "av1"));
  if (levels.length === 0) {
    // Native playback chooses its renditions itself; play longer so its own choices show.
    for (const s of ["down", "up", "audio"]) row[s] = "n/a: the element picks renditions itself";
    await playUntil("playing on", 12);
  } else {
    const heights = [...new Set(levels.map((l) => l.height))].sort((a, b) => a - b);
    check(heights.length >= 3, `${client.name} sees only the heights ${heights}`);
    const active = levels.find((l) => l.active);
    const low = levels.filter((l) => l.height === heights[0])
      .sort((a, b) => (b.audio === active?.audio) - (a.audio === active?.audio))[0];
    // Up to the top rung, with the other audio rendition where the client offers one: for
    // HLS the top rung is paired with the other audio; for DASH any pairing is a variant.
    const tops = levels.filter((l) => l.height === heights[heights.length - 1]);
    const high = tops.find((l) => l.audio !== low.audio) || tops[0];

    let since = Date.now();
    await H((k) => window.H.select(k), low.key);
    await playUntil("switch down", 8);
    let state = await H(() => window.H.state());
    check(state.height === low.height, `${client.name}: after switching down the picture is ${state.height} high, not ${low.height}`);
    check(fetchedSince(since).has(`v${low.height}${suffix}`), `${client.name}: no v${low.height}${suffix} segment fetched after switching down`);
    row.down = "pass";

    since = Date.now();
    await H((k) => window.H.select(k), high.key);
    await playUntil("switch up", 12);
    state = await H(() => window.H.state());
    check(state.height === high.height, `${client.name}: after switching up the picture is ${state.height} high, not ${high.height}`);
    const fetched = fetchedSince(since);
    check(fetched.has(`v${high.height}${suffix}`), `${client.name}: no v${high.height}${suffix} segment fetched after switching up`);
    row.up = "pass";

    // The audio rendition alone: same picture, the other audio.
    const alone = levels.find((l) => l.height === high.height && l.audio !== high.audio);
    if (alone) {
      since = Date.now();
      await H((k) => window.H.select(k), alone.key);
      await playUntil("audio switch", 15);
      if (alone.audio) {
        check(fetchedSince(since).has(alone.audio), `${client.name}: no ${alone.audio} segment fetched after the audio switch`);
      }
      row.audio = `pass (${high.audio} → ${alone.audio}, picture kept)`;
    } else if (low.audio !== high.audio) {
      if (high.audio) {
        check(fetched.has(high.audio), `${client.name}: no ${high.audio} segment fetched after switching up`);
      }
      row.audio = `pass (${low.audio} → ${high.audio} with the rung, as the stream pairs them)`;
    } else {
      row.audio = `n/a: ${client.name} is offered one audio rendition (${high.audio})`;
    }
  }

  // Exactly onto a segment boundary (24 s: the 5th video and audio segments both start there),
  // where a playlist whose EXTINFs drift past the media's timeline sends Chromium's own HLS
  // playback into the segment before, which ends short of it (docs/TESTING.md).
  await H((t) => window.H.seek(t), 24);
  await playUntil("seek forward", 28);
  await H((t) => window.H.seek(t), 14);
  await playUntil("seek back", 18);
  row.seek = "pass";
  const end = await H(() => window.H.state());
  row.waits_ms = await H(() => window.H.waits.slice());
  const strays = [...new Set(requests.filter((r) => r.at >= startedAt).map((r) => r.rendition)
    .filter((r) => isVideo(r) && familyOf(r) !== family))];
  check(strays.length === 0, `${client.name} played ${family} and also fetched ${strays.join(", ")}: a change of codec family`);
  check(end.errors.length === 0, `${client.name}: ${end.errors.join("; ")}`);
  await page.close();

  // The audio-only rendition, on its own page: start, seek, no picture.
  if (client.manifest === "hls") {
    const { page: audioPage } = await harnessPage(context, client.lib);
    const A = (fn, arg) => audioPage.evaluate(fn, arg);
    await A(([kind, url]) => window.H.load(kind, url), [client.adapter, audioOnlyUrl]);
    const audioUntil = async (step, target) => {
      try {
        await A(([t, ms]) => window.H.playUntil(t, ms), [target, STALL_MS]);
      } catch (e) {
        throw new Error(`${client.name}, audio-only ${step}: ${e.message}`);
      }
    };
    await audioUntil("start", 3);
    await A((t) => window.H.seek(t), 26);
    await audioUntil("seek", 29);
    const s = await A(() => window.H.state());
    check(s.height === 0, `${client.name}: the audio-only rendition shows a ${s.height}-high picture`);
    check(s.errors.length === 0, `${client.name} audio-only: ${s.errors.join("; ")}`);
    row.audio_only = "pass";
    await audioPage.close();
  } else {
    row.audio_only = "n/a: the MPD offers no audio-only presentation (DASH players pick audio with video)";
  }
  log(`passed ${JSON.stringify(row)}`);
  return row;
}

const rows = [];
let failed = null;
try {
  const context = await browser.newContext();
  // The clients run side by side: each plays in real time, so in series they would take
  // minutes. Each has its own page, player and media element.
  const results = await Promise.allSettled(
    CLIENTS.filter((c) => !only || only.includes(c.name)).map((c) => run(c, context)));
  for (const r of results) {
    if (r.status === "fulfilled") rows.push(r.value);
    else {
      console.error(`FAILED ${r.reason && r.reason.message}`);
      failed = failed || r.reason;
    }
  }
} finally {
  writeFileSync(`${ARTIFACTS}/report.json`, JSON.stringify(rows, null, 2) + "\n");
  await browser.close();
}
console.log(JSON.stringify(rows, null, 1));
if (failed) {
  console.error(failed.message);
  process.exit(1);
}
