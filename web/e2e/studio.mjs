// Browser test of the studio's films (/admin/films, crates/server/src/studio/), driving
// Debian's Chromium with playwright-core against a running `monsoon serve` with one published
// film (crates/monsoon/tests/browser.rs). An operator signs in, edits the film's Vietnamese
// title and sees it on the public page without a re-ingest; a bad field shows its rule next
// to it and saves nothing; a premiere time set in Viet Nam's time gives the film page its
// countdown; a poster upload is shown by the page; a draft is created with a premiere and stays
// private. Every studio page runs under its Content-Security-Policy and passes axe-core's
// WCAG 2 A/AA rules. Environment: BASE_URL, FILM, ADMIN_TOKEN, POSTER (an image file),
// ARTIFACTS, CHROMIUM. Exits non-zero with a message on the first broken promise.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("BASE_URL");
const FILM = env("FILM");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const POSTER = env("POSTER");
const ARTIFACTS = env("ARTIFACTS");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const step = (name) => console.log(`· ${name}`);

async function checked(page, name) {
  const csp = await page.evaluate(() => window.__csp);
  check(Array.isArray(csp) && csp.length === 0, `${name}: CSP violations ${JSON.stringify(csp)}`);
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, first: v.nodes[0]?.target.join(" ") }));
  });
  const bad = found.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `${name}: accessibility violations ${JSON.stringify(bad)}`);
  await page.screenshot({ path: `${ARTIFACTS}/studio-${name}.png`, fullPage: true });
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "vi-VN" });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__csp.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  const page = await context.newPage();
  const viewer = await (await browser.newContext()).newPage();

  step("sign in and open the studio");
  await page.goto(`${BASE}/admin/films`);
  check(new URL(page.url()).pathname === "/admin/login", `/admin/films without a session went to ${page.url()}`);
  await page.click("details summary");
  await page.fill("#token", ADMIN_TOKEN);
  await Promise.all([page.waitForURL("**/admin?lang=*"), page.click('form:has(#token) button[type="submit"]')]);
  await page.goto(`${BASE}/admin/films`);
  await page.waitForSelector(`#film-rows a[href="/admin/films/${FILM}"]`);
  await checked(page, "list");

  step("edit the Vietnamese title");
  await page.click(`#film-rows a[href="/admin/films/${FILM}"]`);
  await page.waitForSelector("#film-form[data-ready]");
  const before = await page.inputValue('[name="title.vi"]');
  check(before.length > 0, "the form was not filled with the film's title");
  const title = "Mưa Đỏ — bản đạo diễn";
  await page.fill('[name="title.vi"]', title);
  await page.click('#film-form button[type="submit"]');
  await page.waitForFunction(() => /Đã lưu/.test(document.getElementById("status").textContent));
  await checked(page, "edit");

  step("the public page shows it, without a re-ingest");
  await viewer.goto(`${BASE}/films/${FILM}`);
  check((await viewer.textContent("h1")).includes(title), `the film page's title is ${await viewer.textContent("h1")}`);

  step("a bad field shows its rule next to it, in the page's language, and saves nothing");
  await page.fill('[name="title.vi"]', "Không được lưu");
  await page.fill('[name="language"]', "Vietnamese");
  await page.fill('[name="trailer"]', "khong-co-phim-nay");
  await page.click('#film-form button[type="submit"]');
  const language = page.locator('[data-error-for="language"]');
  await language.waitFor({ state: "visible" });
  const said = await language.textContent();
  check(said.includes("“Vietnamese” không phải thẻ ngôn ngữ BCP 47"), `language's error: ${said}`);
  check((await language.textContent()).includes('language = "vi"'), "the example is not shown");
  const trailer = await page.textContent('[data-error-for="trailer"]');
  check(trailer.includes("Chưa có phim nào được phát hành với slug “khong-co-phim-nay”"), `trailer's error: ${trailer}`);
  check(!/published film|language tag/.test(said + trailer), `English on the Vietnamese page: ${said} ${trailer}`);
  check(await page.getAttribute('[name="language"]', "aria-invalid") === "true", "the field is not marked");
  await checked(page, "errors");
  await viewer.reload();
  check((await viewer.textContent("h1")).includes(title), "a refused edit was saved");

  step("a premiere time in Viet Nam's time gives the page its countdown");
  await page.fill('[name="title.vi"]', title);
  await page.fill('[name="language"]', "");
  await page.fill('[name="trailer"]', "");
  const tomorrow = new Date(Date.now() + 30 * 3600 * 1000 + 7 * 3600 * 1000).toISOString().slice(0, 11) + "20:00";
  await page.fill('[name="free_release"]', tomorrow);
  await page.click('#film-form button[type="submit"]');
  await page.waitForFunction(() => /Đã lưu/.test(document.getElementById("status").textContent));
  const stored = await page.evaluate(async (slug) =>
    (await (await fetch(`/admin/api/films/${slug}`)).json()).meta.free_release, FILM);
  check(stored === `${tomorrow}:00+07:00`, `free_release stored as ${stored}`);
  check(await page.textContent("#page-link") === "Trang đếm ngược", "no countdown page link");
  await viewer.reload();
  await viewer.waitForSelector("#countdown");
  await viewer.screenshot({ path: `${ARTIFACTS}/studio-countdown.png` });

  step("a poster upload is shown by the page");
  await page.setInputFiles("#file-poster", POSTER);
  await page.click('.image-form[data-kind="poster"] button[type="submit"]');
  await page.waitForFunction(() => /^\/art\//.test(new URL(document.getElementById("img-poster").src).pathname));
  const art = new URL(await page.getAttribute("#img-poster", "src"), BASE).pathname;
  await viewer.reload();
  check((await viewer.content()).includes(art), `the film page does not show ${art}`);

  step("a draft with a premiere");
  await page.goto(`${BASE}/admin/films/new`);
  await page.fill('[name="slug"]', "phim-moi");
  await page.fill('[name="title.vi"]', "Phim mới");
  await page.fill('[name="title.en"]', "New film");
  await page.fill('[name="free_release"]', "2030-01-01T20:00");
  await page.selectOption('[name="age_rating"]', "K");
  await Promise.all([page.waitForURL("**/admin/films/phim-moi?created=1"), page.click('#film-form button[type="submit"]')]);
  await page.waitForSelector("#film-form[data-ready]");
  check(await page.inputValue('[name="free_release"]') === "2030-01-01T20:00", "the premiere did not come back");
  check((await page.textContent("#state")) === "Bản nháp", "not shown as a draft");
  await checked(page, "draft");
  const draftPage = await viewer.goto(`${BASE}/films/phim-moi`);
  check(draftPage.status() === 404, `a draft's public page answered ${draftPage.status()}`);
  await page.goto(`${BASE}/admin/films`);
  await page.waitForSelector('#film-rows a[href="/admin/films/phim-moi"]');

  step("a draft is deleted after a confirmation; a published film offers no deletion");
  await page.goto(`${BASE}/admin/films/${FILM}`);
  await page.waitForSelector("#film-form[data-ready]");
  check(await page.isHidden("#draft-delete"), "a published film offers to be deleted");
  await page.goto(`${BASE}/admin/films/phim-moi`);
  await page.waitForSelector("#film-form[data-ready]");
  check(await page.isVisible("#delete-draft"), "the draft offers no deletion");
  page.once("dialog", (dialog) => dialog.dismiss());
  await page.click("#delete-draft");
  await page.waitForTimeout(500);
  check(page.url().endsWith("/admin/films/phim-moi"), "a dismissed confirmation deleted the draft");
  page.once("dialog", (dialog) => dialog.accept());
  await Promise.all([page.waitForURL(`${BASE}/admin/films`), page.click("#delete-draft")]);
  await page.waitForSelector("#film-rows tr");
  check(await page.$('#film-rows a[href="/admin/films/phim-moi"]') === null, "the deleted draft is still listed");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
