// Browser test of the studio's whole path for a film (issue "Operator studio"), driving
// Debian's Chromium with playwright-core against a running `monsoon serve` on one machine
// (its own worker runs the jobs; crates/monsoon/tests/browser.rs): an operator creates a film,
// uploads its master, the network is cut mid-upload and the page reloaded, the upload resumes
// from where the server stopped and completes, the job's progress moves, the film plays; a
// dub and subtitles are added from the studio and the player switches to them; a title edited
// in the studio shows on the public page without a re-ingest.
//
// Environment: BASE_URL, ADMIN_TOKEN, MASTER, DUB, SUBS (files), SLUG. Exits non-zero with a
// message on the first broken promise.
import { statSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const TOKEN = env("ADMIN_TOKEN");
const MASTER = env("MASTER");
const DUB = env("DUB");
const SHORT_DUB = env("SHORT_DUB");
const SUBS = env("SUBS");
const SLUG = env("SLUG");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const step = (name) => console.log(`· ${name}`);
const size = statSync(MASTER).size;

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
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  const patches = [];
  const creations = [];
  page.on("request", (r) => {
    if (!r.url().includes("/admin/api/uploads")) return;
    if (r.method() === "PATCH") patches.push(Number(r.headers()["upload-offset"]));
    if (r.method() === "POST") creations.push(r.url());
  });

  step("sign in and create the film");
  await page.goto(`${BASE}/admin/login?lang=en`, { waitUntil: "domcontentloaded" });
  await page.click("details summary");
  await page.fill("#token", TOKEN);
  await Promise.all([page.waitForURL("**/admin?lang=*"), page.click('form:has(#token) button[type="submit"]')]);
  await page.goto(`${BASE}/admin/films/new`, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.getElementById("film-form").dataset.ready === "true");
  await page.fill("#f-slug", SLUG);
  await page.fill("#f-title-vi", "Sông nước");
  await page.fill("#f-title-en", "River life");
  await Promise.all([page.waitForURL(`**/admin/films/${SLUG}**`), page.click('#film-form button[type="submit"]')]);
  await page.waitForSelector("#media");

  step("upload the master, throttled, and cut the network mid-way");
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 20, downloadThroughput: 10_000_000, uploadThroughput: 300_000,
  });
  await page.setInputFiles("#master-file", MASTER);
  await page.click('#master-form button[type="submit"]');
  const listing = async () => (await page.request.get(`${BASE}/admin/api/uploads`)).json();
  let upload = null;
  for (const until = Date.now() + 90_000; Date.now() < until;) {
    upload = (await listing()).uploads[0];
    if (upload && upload.offset > 0 && upload.offset < size / 2) break;
    check(!(upload && upload.offset >= size / 2), "the upload was too fast to cut mid-way");
    await page.waitForTimeout(100);
  }
  check(upload && upload.offset > 0, "no byte of the master reached the server");
  // The studio lists it, in flight, with its speed.
  await page.waitForFunction((name) => [...document.querySelectorAll("#upload-rows tr")].some((tr) =>
    tr.dataset.state === "uploading" && tr.textContent.includes(name) && / MB\/s/.test(tr.textContent)),
  MASTER.split("/").pop(), { timeout: 15_000 });
  const uploadRows = await page.$$eval("#upload-rows tr", (rows) => rows.map((tr) => tr.textContent));
  check(uploadRows.some((t) => t.includes("Tệp gốc") && t.includes("Đang tải lên")),
    `the upload's kind and state are not in Vietnamese: ${uploadRows.join(" | ")}`);
  step(`cut at about ${upload.offset} of ${size} bytes`);
  await context.setOffline(true);
  await page.waitForTimeout(1500);
  await context.setOffline(false);

  step("reload the page and pick the same file: the upload resumes");
  const patchesBefore = patches.length;
  await page.reload({ waitUntil: "domcontentloaded" });
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  await page.waitForSelector("#media");
  await page.setInputFiles("#master-file", MASTER);
  await page.click('#master-form button[type="submit"]');
  await page.waitForFunction(() => ["queued", "failed"].includes(
    document.getElementById("master-status").dataset.state), null, { timeout: 120_000 });
  const said = await page.textContent("#master-status");
  check(await page.getAttribute("#master-status", "data-state") === "queued", `the master: ${said}`);
  const resumed = patches.slice(patchesBefore);
  check(resumed.length > 0 && resumed[0] > 0, `after the reload the upload started again at ${resumed[0]}`);
  check(creations.length === 1, `${creations.length} uploads were created for one file`);

  step("the job's progress moves, and the film is published");
  const seen = new Set();
  let state = "";
  for (const until = Date.now() + 300_000; Date.now() < until;) {
    const row = await page.$("#job-rows tr");
    if (row) {
      state = await row.getAttribute("data-state");
      const pct = await row.$eval(".percent", (e) => e.textContent.trim());
      seen.add(`${state} ${pct}`);
      check(state !== "failed", `the job failed: ${await row.textContent()}`);
      if (state === "done") break;
    }
    await page.waitForTimeout(250);
  }
  check(state === "done", `the job is ${state}: ${[...seen]}`);
  check(seen.size >= 2, `the job's progress never moved: ${[...seen]}`);
  // The studio is in Vietnamese (the default): the job's state, its stage and its log too.
  const doneRow = await page.textContent("#job-rows tr");
  check(/Hoàn tất/.test(doneRow) && /đã xuất bản phiên bản .*đã kiểm tra: v\d+/.test(doneRow),
    `the job's row does not say, in Vietnamese, that the verified ladder is published: ${doneRow}`);
  check(!/published as version|claimed by worker|\bdone\b/.test(doneRow), `English in the job's row: ${doneRow}`);

  step("the job's log opens under its row, a line a stage, and closes");
  await page.click("#job-rows tr .log-toggle");
  await page.waitForSelector("#job-rows tr.job-log li", { timeout: 10_000 });
  check(await page.getAttribute("#job-rows tr .log-toggle", "aria-expanded") === "true", "the log's button is not expanded");
  const logLines = await page.$$eval("#job-rows tr.job-log li", (items) => items.map((li) => li.textContent));
  const logText = logLines.join(" | ");
  // queued, claimed, fetching the upload, probing, transcoding, publishing, published.
  check(logLines.length === 7, `the log is not a line a stage: ${logText}`);
  check(/đang chờ$/.test(logLines[0]) && /đã nhận$/.test(logLines[1]) && /đang chuyển mã/.test(logLines[4]),
    `the log's lines: ${logText}`);
  check(/đã xuất bản phiên bản .*đã kiểm tra: v\d+/.test(logLines[6]), `the log's last line: ${logText}`);
  await page.waitForTimeout(2500); // a poll redraws the table: the log stays open
  check(await page.$("#job-rows tr.job-log li") !== null, "the log closed by itself on a poll");
  await page.click("#job-rows tr .log-toggle");
  await page.waitForFunction(() => !document.querySelector("#job-rows tr.job-log"), null, { timeout: 10_000 });

  step("on an English page the same job and log are in English");
  await page.goto(`${BASE}/admin/films/${SLUG}?lang=en`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#job-rows tr[data-state=done]", { timeout: 10_000 });
  const rowEn = await page.textContent("#job-rows tr");
  check(/Done/.test(rowEn) && /published as version .*verified: v\d+/.test(rowEn), `the job's row: ${rowEn}`);
  await page.click("#job-rows tr .log-toggle");
  await page.waitForSelector("#job-rows tr.job-log li", { timeout: 10_000 });
  const logEn = await page.$$eval("#job-rows tr.job-log li", (items) => items.map((li) => li.textContent));
  check(/queued$/.test(logEn[0]) && /claimed by worker/.test(logEn[1]) && /^.*transcoding \(attempt 1 of 3/.test(logEn[4]),
    `the log in English: ${logEn.join(" | ")}`);

  step("the dashboard's jobs table says the stage in the page's language too");
  await page.goto(`${BASE}/admin?lang=vi`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#jobs-rows tr", { timeout: 15_000 });
  const dashRow = await page.textContent("#jobs-rows tr");
  check(/Hoàn tất/.test(dashRow) && /đã xuất bản phiên bản .*đã kiểm tra: v\d+/.test(dashRow),
    `the dashboard's job row: ${dashRow}`);
  await page.goto(`${BASE}/admin/films/${SLUG}?lang=vi`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#job-rows tr[data-state=done]", { timeout: 10_000 });

  step("the film plays");
  const viewer = await context.newPage();
  await viewer.goto(`${BASE}/watch/${SLUG}`, { waitUntil: "domcontentloaded" });
  await viewer.waitForFunction(() => window.monsoonPlayer && window.monsoonPlayer.video.currentTime >= 2,
    null, { timeout: 60_000, polling: 200 });
  await viewer.close();

  step("add a dub and subtitles from the studio");
  const addTrack = async (kind, file, lang, label) => {
    const jobsBefore = await page.$$eval("#job-rows tr", (rows) => rows.length);
    await page.selectOption("#track-kind", kind);
    await page.fill("#track-lang", lang);
    await page.fill("#track-label", label);
    await page.setInputFiles("#track-file", file);
    await page.click('#track-form button[type="submit"]');
    await page.waitForFunction((n) => document.querySelectorAll("#job-rows tr").length > n
      || document.getElementById("track-status").dataset.state === "failed", jobsBefore, { timeout: 120_000 });
    check(await page.getAttribute("#track-status", "data-state") !== "failed",
      `the ${kind}: ${await page.textContent("#track-status")}`);
    await page.waitForFunction(() => {
      const row = document.querySelector("#job-rows tr");
      return row && ["done", "failed"].includes(row.dataset.state);
    }, null, { timeout: 180_000 });
    check(await page.getAttribute("#job-rows tr", "data-state") === "done",
      `the ${kind} job: ${await page.textContent("#job-rows tr")}`);
  };
  await addTrack("audio", DUB, "en", "English (dub)");
  await addTrack("subtitles", SUBS, "en", "English");

  step("the player switches to the dub and the subtitles");
  const audio = [];
  const watch = await context.newPage();
  watch.on("request", (r) => {
    const m = r.url().match(/\/media\/[^/]+\/[^/]+\/(a\d+[^/]*)\/seg_\d+\.m4s$/);
    if (m) audio.push(m[1]);
  });
  // The live catalog takes the new version within its refresh.
  for (const until = Date.now() + 15_000; Date.now() < until;) {
    const master = await (await watch.request.get(`${BASE}/media/${SLUG}/master.m3u8`)).text();
    if (master.includes("TYPE=SUBTITLES") && master.includes("-en/index.m3u8")) break;
    await watch.waitForTimeout(200);
  }
  await watch.goto(`${BASE}/watch/${SLUG}`, { waitUntil: "domcontentloaded" });
  await watch.waitForFunction(() => window.monsoonPlayer && window.monsoonPlayer.video.currentTime >= 1,
    null, { timeout: 60_000, polling: 200 });
  await watch.click("#c-settings");
  if (await watch.evaluate(() => window.monsoonPlayer.engine) !== "hls.js") {
    await watch.selectOption("#c-quality", { index: 1 });
    await watch.waitForFunction(() => window.monsoonPlayer.engine === "hls.js", null, { timeout: 30_000 });
  }
  await watch.waitForFunction(() => document.getElementById("c-audio").options.length > 1, null, { timeout: 30_000 });
  const before = audio.length;
  await watch.selectOption("#c-audio", "English (dub)");
  await watch.waitForFunction(() => {
    const hls = window.monsoonPlayer.hls;
    return hls.audioTrack >= 0 && hls.audioTracks[hls.audioTrack].lang === "en";
  }, null, { timeout: 15_000 });
  for (const until = Date.now() + 20_000; Date.now() < until && !audio.slice(before).some((r) => r.endsWith("-en"));) {
    await watch.waitForTimeout(200);
  }
  check(audio.slice(before).some((r) => r.endsWith("-en")), `no segment of the dub: ${audio.slice(before)}`);
  await watch.selectOption("#c-subs", "en");
  await watch.waitForFunction(() => [...window.monsoonPlayer.video.textTracks].some((t) =>
    t.language === "en" && t.mode === "showing" && t.activeCues && t.activeCues.length > 0),
  null, { timeout: 30_000 });
  await watch.close();

  step("a title edited in the studio shows on the public page, without a re-ingest");
  const versionBefore = (await (await page.request.get(`${BASE}/api/v1/films/${SLUG}`)).json()).published_at;
  await page.fill("#f-title-vi", "Sông nước miền Tây");
  await page.click('#film-form button[type="submit"]');
  for (const until = Date.now() + 15_000; Date.now() < until;) {
    const html = await (await page.request.get(`${BASE}/films/${SLUG}`)).text();
    if (html.includes("Sông nước miền Tây")) break;
    await page.waitForTimeout(200);
  }
  const html = await (await page.request.get(`${BASE}/films/${SLUG}`)).text();
  check(html.includes("Sông nước miền Tây"), "the edited title is not on the public page");
  const versionAfter = (await (await page.request.get(`${BASE}/api/v1/films/${SLUG}`)).json()).published_at;
  check(versionAfter === versionBefore, `the edit published a new version: ${versionBefore} → ${versionAfter}`);
  step("a dub not as long as the film fails, saying so in the page's language");
  const rowsBefore = await page.$$eval("#job-rows tr[data-job]", (rows) => rows.length);
  await page.selectOption("#track-kind", "audio");
  await page.fill("#track-lang", "fr");
  await page.fill("#track-label", "Français");
  await page.setInputFiles("#track-file", SHORT_DUB);
  await page.click('#track-form button[type="submit"]');
  await page.waitForFunction((n) => {
    const rows = document.querySelectorAll("#job-rows tr[data-job]");
    return rows.length > n && rows[0].dataset.state === "failed";
  }, rowsBefore, { timeout: 120_000 });
  const failedRow = await page.textContent("#job-rows tr[data-job]");
  check(/Thất bại/.test(failedRow) && /Bản âm thanh dài 6\.0 giây, còn phim dài 24\.0 giây/.test(failedRow),
    `the failed dub's row: ${failedRow}`);

  step("a text file named .mp4 is refused in the page's language, naming what it begins with");
  await page.setInputFiles("#master-file", {
    name: "ghi-chu.mp4", mimeType: "video/mp4", buffer: Buffer.from("Kịch bản, bản nháp thứ ba\n".repeat(100)),
  });
  await page.click('#master-form button[type="submit"]');
  await page.waitForFunction(() => document.getElementById("master-status").dataset.state === "failed",
    null, { timeout: 60_000 });
  const refused = await page.textContent("#master-status");
  check(/Đây là tệp văn bản, không phải phim: tệp bắt đầu bằng “Kịch bản, bản nháp thứ ba”/.test(refused),
    `the refusal under the form: ${refused}`);
  await page.waitForSelector("#upload-rows tr[data-state=failed]", { timeout: 15_000 });
  const refusedRow = await page.textContent("#upload-rows tr[data-state=failed]");
  check(/Bị từ chối: Đây là tệp văn bản/.test(refusedRow), `the refused upload's row: ${refusedRow}`);
  console.log("studio: created, uploaded through a cut, published, dubbed, subtitled, retitled, refused a text file");
} finally {
  await browser.close();
}
