// Browser test of the operator's dashboard (docs/AUDIENCE.md, "The dashboard"), driving Debian's
// Chromium with playwright-core against a running `monsoon serve` (crates/monsoon/tests/browser.rs).
//
// Heartbeats are sent from here, as players on named links would send them; then an operator
// signs in on a phone in Vietnamese and on a desktop in English and reads the page: axes in
// the page's language with 24-hour times and day/month dates, whole-number ticks for counts
// and % for ratios, each chart captioned with its window, the view threshold the server has,
// film titles in the picker, the language kept through sign-in, nothing wider than a 360 px
// screen, the split by network type, rung and codec (with bytes), the day's sessions
// watching by rung drawn a line a rung, the origin's errors by class, and a CSV download
// with the right header (a column a rung) and rows. Environment: BASE_URL, FILM,
// TITLE_VI, TITLE_EN, VIEW_THRESHOLD_S, ADMIN_TOKEN, ARTIFACTS. Exits non-zero with a message
// on the first broken promise.
import { mkdirSync, readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const FILM = env("FILM");
const TITLE_VI = env("TITLE_VI");
const TITLE_EN = env("TITLE_EN");
const VIEW_THRESHOLD_S = env("VIEW_THRESHOLD_S");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(ARTIFACTS, { recursive: true });
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const step = (name) => console.log(`· ${name}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- Players on named links, and requests the origin refuses ---------------------------------
step("heartbeats from players on 4G, 3G and an unnamed link; a refused segment");
const players = [
  { network: "4g", height: 360, codec: "h264", bytes: 3_000_000 },
  { network: "3g", height: 234, codec: "h264", bytes: 1_000_000 },
  { network: undefined, height: 360, codec: "av1", bytes: 2_000_000 },
];
for (const p of players) {
  const minted = await (await fetch(`${BASE}/api/v1/films/${FILM}/sessions`, {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}",
  })).json();
  check(minted.proof_bits === 0, `the test server asks for no proof of work: ${JSON.stringify(minted)}`);
  p.session = minted.session_id;
  p.token = minted.token;
}
const beat = async (p, seq, playMs, bytes) => {
  const r = await fetch(`${BASE}/api/v1/sessions/${p.session}/heartbeat`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({
      token: p.token, proof: "0", seq, state: "playing", play_ms: playMs, startup_ms: 700,
      playhead_ms: playMs, height: p.height, bitrate_kbps: 500, bytes, codec: p.codec,
      network: p.network,
    }),
  });
  check(r.status === 204, `heartbeat ${seq}: ${r.status} ${await r.text()}`);
};
for (const p of players) await beat(p, 1, 0, 0);
await sleep(1_200); // past the test's minimum gap between beats
for (const p of players) await beat(p, 2, 1_000, p.bytes);
// A link the server does not know is refused, naming the field.
{
  const p = players[0];
  const r = await fetch(`${BASE}/api/v1/sessions/${p.session}/heartbeat`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: p.token, seq: 3, state: "playing", play_ms: 1_000, network: "5g" }),
  });
  const text = await r.text();
  check(r.status === 400 && text.includes("network"), `network "5g": ${r.status} ${text}`);
}
for (const path of [`/media/${FILM}/0/v360/missing.m4s`, `/media/no-such-film/master.m3u8`]) {
  const r = await fetch(BASE + path);
  check(r.status === 404, `${path}: ${r.status}`);
}
// Prometheus gets the players' bytes beside the origin's, for the offload across nodes.
{
  const text = await (await fetch(`${BASE}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
  check(/^monsoon_audience_reported_bytes_total 6000000$/m.test(text),
    `/metrics: ${text.split("\n").filter((l) => l.includes("reported_bytes")).join(" | ")}`);
}
// The CSV is the operator's: 401 without a session.
check((await fetch(`${BASE}/admin/api/dashboard.csv?film=${FILM}`)).status === 401,
  "the CSV answered without a session");

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

/** Signs in from `/admin?lang=<lang>` and checks the language was kept throughout. */
async function signIn(page, lang) {
  await page.goto(`${BASE}/admin?lang=${lang}`, { waitUntil: "domcontentloaded" });
  const login = new URL(page.url());
  check(login.pathname === "/admin/login" && login.searchParams.get("lang") === lang,
    `/admin without a session went to ${page.url()}`);
  check(await page.evaluate(() => document.documentElement.lang) === lang, "the sign-in page's language");
  check((await page.getAttribute("form[action^='/admin/login']", "action")).endsWith(`lang=${lang}`),
    "the sign-in form does not carry the language");
  // The admin token's way in, behind its disclosure under the operator form.
  await page.click("details summary");
  await page.fill("#token", ADMIN_TOKEN);
  await Promise.all([page.waitForURL(`**/admin?lang=${lang}`), page.click('form:has(#token) button[type="submit"]')]);
  check(await page.evaluate(() => document.documentElement.lang) === lang, "the dashboard's language");
}

/** Waits until the figures of the three players are drawn. */
async function figures(page) {
  await page.waitForFunction(() => document.querySelectorAll("#chart-networks .rung").length === 3
    && document.getElementById("chart-concurrent").dataset.yTicks
    && document.getElementById("chart-views").dataset.xTicks
    && document.getElementById("chart-rungs-day").dataset.series === JSON.stringify(["360p", "234p"])
    && document.getElementById("chart-rungs-day").dataset.yTicks,
  null, { timeout: 20_000 });
}

const ticks = (page, id, axis) =>
  page.evaluate(([id, axis]) => JSON.parse(document.getElementById(id).dataset[axis] || "[]"), [id, axis]);

/** Axes: 24-hour hh:mm with dd/mm dates, whole-number counts, % for ratios. */
async function axes(page) {
  const TIME = /^([01]\d|2[0-3]):[0-5]\d(\n\d{2}\/\d{2})?$/;
  for (const id of ["chart-concurrent", "chart-views", "chart-startup", "chart-rebuffer", "chart-egress", "chart-networks-day", "chart-rungs-day"]) {
    const x = await ticks(page, id, "xTicks");
    check(x.length >= 2 && x.every((l) => TIME.test(l)), `${id}: time ticks ${JSON.stringify(x)}`);
    check(x.some((l) => l.includes("\n")), `${id}: no day/month on the time axis ${JSON.stringify(x)}`);
  }
  // A day of ticks every few hours has afternoon hours: written 13–23, not 1–11 PM.
  const day = await ticks(page, "chart-views", "xTicks");
  check(day.some((l) => Number(l.slice(0, 2)) >= 13), `no 24-hour time on the day axis: ${JSON.stringify(day)}`);
  const today = new Date();
  const ddmm = `${String(today.getDate()).padStart(2, "0")}/${String(today.getMonth() + 1).padStart(2, "0")}`;
  const hourDates = (await ticks(page, "chart-concurrent", "xTicks")).map((l) => l.split("\n")[1]).filter(Boolean);
  check(hourDates.includes(ddmm), `day/month ${ddmm} not on the last hour's axis: ${JSON.stringify(hourDates)}`);
  for (const id of ["chart-concurrent", "chart-views", "chart-networks-day", "chart-rungs-day"]) {
    const y = await ticks(page, id, "yTicks");
    check(y.length >= 2 && y.every((l) => /^\d+$/.test(l)), `${id}: count ticks ${JSON.stringify(y)}`);
  }
  const rebuffer = await ticks(page, "chart-rebuffer", "yTicks");
  check(rebuffer.length >= 2 && rebuffer.every((l) => / %$/.test(l)), `rebuffer ticks ${JSON.stringify(rebuffer)}`);
  const startup = await ticks(page, "chart-startup", "yTicks");
  check(startup.every((l) => / ms$/.test(l)), `startup ticks ${JSON.stringify(startup)}`);
}

/** Every chart's caption names its window, in the page's language. */
async function captions(page, windows) {
  const texts = await page.$$eval(".charts figcaption", (fs) => fs.map((f) => f.textContent));
  check(texts.length >= 12, `captions: ${JSON.stringify(texts)}`);
  for (const text of texts) {
    check(windows.some((w) => text.endsWith(`· ${w}`)), `a caption without its window: ${text}`);
  }
  const concurrent = texts[0];
  check(concurrent.endsWith(windows[0]), `the live chart covers the last hour: ${concurrent}`);
}

async function rows(page, id) {
  return page.$$eval(`#${id} .rung`, (rs) => rs.map((r) => r.textContent));
}

// --- Vietnamese, on a phone ---------------------------------------------------------------------
step("vi, 360×740: sign-in keeps the language; titles, axes, captions, no overflow");
{
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    locale: "vi-VN", acceptDownloads: true,
  });
  const page = await context.newPage();
  await signIn(page, "vi");
  const options = await page.$$eval("#film option", (os) => os.map((o) => [o.value, o.textContent]));
  check(options.some(([slug, title]) => slug === FILM && title === TITLE_VI),
    `the picker shows slugs, not titles: ${JSON.stringify(options)}`);
  await page.selectOption("#film", FILM);
  await figures(page);
  await axes(page);
  await captions(page, ["1 giờ qua", "24 giờ qua", "hiện tại"]);
  const note = await page.textContent("#view-threshold");
  check(note.includes(`${VIEW_THRESHOLD_S} giây`), `the view threshold note: ${note}`);
  const networks = await rows(page, "chart-networks");
  check(networks.length === 3 && networks[0].startsWith("3g") && networks[1].startsWith("4g")
    && networks[2].startsWith("không rõ"), `by network: ${JSON.stringify(networks)}`);
  const rungs = await rows(page, "chart-watching-rungs");
  check(rungs.length === 2 && rungs[0].startsWith("360p") && rungs[0].endsWith("2")
    && rungs[1].startsWith("234p") && rungs[1].endsWith("1"), `by rung: ${JSON.stringify(rungs)}`);
  const codecs = await rows(page, "chart-codecs");
  check(codecs.some((r) => r.startsWith("H.264") && r.includes("4 MB đã tải"))
    && codecs.some((r) => r.startsWith("AV1") && r.includes("2 MB đã tải")), `by codec: ${JSON.stringify(codecs)}`);
  const errors = await rows(page, "chart-errors");
  const failed = (r) => Number((r.match(/4xx (\d+)/) || [])[1] || 0);
  check(errors.reduce((a, r) => a + failed(r), 0) >= 2, `origin errors: ${JSON.stringify(errors)}`);
  check((await page.textContent("#s-offload")) !== "–", "no offload figure");
  // The day's history by network, as the chart gets it: the minutes since the beats.
  const series = await page.evaluate(async (film) =>
    (await (await fetch(`/admin/api/dashboard?film=${film}`)).json()).series, FILM);
  const latest = (name) => { const s = series[`network:${name}`]; return s.length ? s[s.length - 1][1] : null; };
  check(latest("4g") === 1 && latest("3g") === 1 && latest("unknown") === 1 && latest("2g") === 0,
    `network series: ${JSON.stringify(Object.keys(series).filter((k) => k.startsWith("network:")).map((k) => [k, series[k].slice(-1)]))}`);
  // The day's history by rung: a series a rung watched, the counts of the beats, and a line
  // each on the chart, named in its legend, highest rung first.
  check(series["rung:360"].slice(-1)[0][1] === 2 && series["rung:234"].slice(-1)[0][1] === 1
    && !("rung:720" in series), `rung series: ${JSON.stringify(Object.keys(series).filter((k) => k.startsWith("rung:")).map((k) => [k, series[k].slice(-1)]))}`);
  const legend = await page.$$eval("#chart-rungs-day .u-legend .u-series .u-label", (ls) => ls.map((l) => l.textContent));
  check(JSON.stringify(legend) === JSON.stringify(["360p", "234p"]), `the rung chart's lines: ${JSON.stringify(legend)}`);
  check(await page.$eval("#chart-rungs-day canvas", (c) => c.width > 0 && c.height > 0), "the rung chart has no canvas");
  const overflow = await page.evaluate(() => [document.scrollingElement.scrollWidth, innerWidth]);
  check(overflow[0] <= overflow[1], `the page is ${overflow[0]} px wide on a ${overflow[1]} px screen`);
  await page.screenshot({ path: `${ARTIFACTS}/admin-phone-vi.png`, fullPage: true });

  step("vi: the CSV download");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  check(/^monsoon-.+\.csv$/.test(download.suggestedFilename()), `file name ${download.suggestedFilename()}`);
  const csv = readFileSync(await download.path(), "utf8").split("\r\n").filter((l) => l);
  const header = "time,concurrent_viewers,views,views_24h,playing_time_s,rebuffer_ratio,startup_ms_p95,bytes,rung:234,rung:360";
  check(csv[0] === header, `CSV header: ${csv[0]}`);
  check(csv.length >= 2, `CSV rows: ${JSON.stringify(csv)}`);
  for (const line of csv.slice(1)) {
    const cells = line.split(",");
    check(cells.length === 10 && !Number.isNaN(Date.parse(cells[0])) && cells[0].endsWith("Z"),
      `CSV row: ${line}`);
    check(cells.slice(1).every((c) => c === "" || Number.isFinite(Number(c))), `CSV row: ${line}`);
  }
  const last = csv[csv.length - 1].split(",");
  check(Number(last[1]) === 3 && Number(last[7]) === 6_000_000 && Number(last[8]) === 1 && Number(last[9]) === 2,
    `the last minute: ${csv[csv.length - 1]}`);
  await context.close();
}

// --- English, on a desktop ---------------------------------------------------------------------
step("en, 1440×1000: titles, axes, captions in English");
{
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, locale: "en-US" });
  const page = await context.newPage();
  await signIn(page, "en");
  const options = await page.$$eval("#film option", (os) => os.map((o) => [o.value, o.textContent]));
  check(options.some(([slug, title]) => slug === FILM && title === TITLE_EN),
    `the picker in English: ${JSON.stringify(options)}`);
  await page.selectOption("#film", FILM);
  await figures(page);
  // en-US would be 12-hour and month first: the page writes en-GB whatever the browser's locale.
  await axes(page);
  await captions(page, ["last 1 h", "last 24 h", "now"]);
  const note = await page.textContent("#view-threshold");
  check(note.includes(`${VIEW_THRESHOLD_S} s`), `the view threshold note: ${note}`);
  const networks = await rows(page, "chart-networks");
  check(networks.some((r) => r.startsWith("not reported")), `by network: ${JSON.stringify(networks)}`);
  await page.screenshot({ path: `${ARTIFACTS}/admin-en.png`, fullPage: true });
  await context.close();
}
await browser.close();
console.log("dashboard: ok");
