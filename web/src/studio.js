// The studio's films (/admin/films, crates/server/src/studio/): the list of films and
// drafts, and the form that creates a draft or edits a film's metadata, Vietnamese and English
// side by side. The server holds the rules (the ones film.toml is held to): a 400 lists every
// broken rule as {key, message, example}, shown under its field. The premiere time is entered
// in Viet Nam's time (UTC+7, no daylight saving) and stored with its offset, as film.toml
// writes it. Requests carry the page's CSRF token (`<meta name="csrf-token">`) when it has one.

const config = JSON.parse(document.getElementById("studio-config").textContent);
const S = config.strings;
const VN_OFFSET_MIN = 7 * 60;

function csrfHeaders() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? { "X-CSRF-Token": meta.content } : {};
}

async function request(method, url, body, contentType) {
  const headers = { ...csrfHeaders() };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : contentType ? body : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data };
}

// Numbers written into a template: the page's decimal sign, no grouping (a year stays 2027).
const number = new Intl.NumberFormat(config.lang, { useGrouping: false, maximumFractionDigits: 3 });

// `template` with each `{name}` replaced by `values[name]`.
function withValues(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => {
    const value = values[name];
    if (value == null) return whole;
    return typeof value === "number" ? number.format(value) : String(value);
  });
}

// A job's stage in the page's language: the template of its name (`config.job_stages`) with
// its values written in, or the job's English message when it has no stage. A failed job
// whose file broke a rule (a dub not as long as the film) says the rule.
function stageText(stage, message) {
  if (stage && stage.name === "failed" && stage.rule) return ruleText({ message, rule: stage.rule });
  const template = stage && config.job_stages[stage.name];
  return template ? withValues(template, stage) : message;
}

const dateTime = new Intl.DateTimeFormat(config.lang, {
  dateStyle: "short",
  timeStyle: "short",
  hour12: false,
  timeZone: "Asia/Ho_Chi_Minh",
});

// --- The list ---

async function showList() {
  const rows = document.getElementById("film-rows");
  const { status, data } = await request("GET", "/admin/api/films");
  if (status !== 200) return;
  document.getElementById("no-films").hidden = data.films.length > 0;
  for (const film of data.films) {
    const tr = document.createElement("tr");
    const title = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/admin/films/" + film.slug;
    link.textContent = film.title.vi || film.title.en || film.slug;
    title.append(link);
    if (film.title.en && film.title.vi) {
      const en = document.createElement("span");
      en.className = "other";
      en.lang = "en";
      en.textContent = film.title.en;
      title.append(en);
    }
    const cells = [
      film.slug,
      film.state === "draft" ? S.state_draft : S.state_published,
      film.free_release ? dateTime.format(new Date(film.free_release)) : "–",
      dateTime.format(new Date(film.updated_at)),
    ].map((text) => {
      const td = document.createElement("td");
      td.textContent = text;
      return td;
    });
    cells[1].className = "state-" + film.state;
    tr.append(title, ...cells);
    rows.append(tr);
  }
}

// --- The form ---

const form = document.getElementById("film-form");
const status = document.getElementById("status");
const field = (name) => form.elements.namedItem(name);

// "2025-11-20T20:00:00+07:00" (any offset) → "2025-11-20T20:00", Viet Nam's wall clock.
function toLocalInput(rfc3339) {
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return "";
  const vn = new Date(at.getTime() + VN_OFFSET_MIN * 60000);
  return vn.toISOString().slice(0, 16);
}

// "2025-11-20T20:00" → "2025-11-20T20:00:00+07:00".
function fromLocalInput(value) {
  return value ? value + ":00+07:00" : null;
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter((l) => l);
}

function fill(meta) {
  for (const [name, value] of [
    ["title.vi", meta.title?.vi],
    ["title.en", meta.title?.en],
    ["synopsis.vi", meta.synopsis?.vi],
    ["synopsis.en", meta.synopsis?.en],
    ["original_title", meta.original_title],
    ["runtime_min", meta.runtime_min],
    ["country", meta.country],
    ["production_company", meta.production_company],
    ["cinema_release", meta.cinema_release],
    ["age_rating", meta.age_rating],
    ["language", meta.language],
    ["trailer", meta.trailer],
  ]) {
    field(name).value = value ?? "";
  }
  for (const name of ["director", "writer", "cast", "genres"]) {
    field(name).value = (meta[name] || []).join("\n");
  }
  field("free_release").value = meta.free_release ? toLocalInput(meta.free_release) : "";
  field("codecs").value = (meta.codecs || []).join(", ");
  field("ladder").value = (meta.ladder || []).map((r) => r.height + " " + r.kbps).join("\n");
}

// The form as FilmMeta's JSON. What cannot be read as its type is sent as it is, so that the
// server's rule (not a silent drop) says what is wrong.
function collect() {
  const text = (name) => field(name).value.trim();
  const optional = (name) => text(name) || null;
  const runtime = text("runtime_min");
  return {
    title: { vi: text("title.vi"), en: text("title.en") },
    synopsis: { vi: field("synopsis.vi").value.trim(), en: field("synopsis.en").value.trim() },
    original_title: optional("original_title"),
    director: lines(field("director").value),
    writer: lines(field("writer").value),
    cast: lines(field("cast").value),
    genres: lines(field("genres").value),
    runtime_min: runtime ? Number(runtime) : null,
    country: optional("country"),
    production_company: optional("production_company"),
    cinema_release: optional("cinema_release"),
    free_release: fromLocalInput(text("free_release")),
    age_rating: optional("age_rating"),
    language: optional("language"),
    trailer: optional("trailer"),
    codecs: text("codecs").split(/[\s,]+/).filter((c) => c),
    ladder: lines(field("ladder").value).map((line) => {
      const [height, kbps] = line.split(/\s+/).map(Number);
      return { height: height || 0, kbps: kbps || 0 };
    }),
  };
}

function clearErrors(root) {
  for (const p of root.querySelectorAll("[data-error-for]")) {
    p.hidden = true;
    p.textContent = "";
  }
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// An error in the page's language: the template of its rule (`[rules]` of the studio's
// strings) with the rule's values written in, or the server's English message when the rule
// has no template here.
function ruleText(error) {
  const rule = error.rule;
  const template = rule && S.rules && S.rules[rule.name];
  return template ? withValues(template, rule) : error.message;
}

// Shows each error under its field: `title.vi` under its input, `cast[2]` and
// `ladder[0].kbps` under their list, anything else at the end of the form.
function showErrors(root, errors) {
  for (const error of errors) {
    const keys = [error.key, error.key.replace(/\[.*$/, ""), error.key.split(".")[0], "*"];
    const slot = keys
      .map((k) => root.querySelector(`[data-error-for="${CSS.escape(k)}"]`))
      .find((el) => el);
    if (!slot) continue;
    const message = document.createElement("span");
    message.textContent = ruleText(error);
    slot.append(message);
    if (error.example) {
      const example = document.createElement("code");
      example.textContent = error.example;
      slot.append(" ", S.example, " ", example);
    }
    slot.hidden = false;
    const input = root.querySelector(`[name="${CSS.escape(error.key.replace(/\[.*$/, ""))}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
}

function showFilm(film) {
  const state = document.getElementById("state");
  state.textContent = film.state === "draft" ? S.state_draft : S.state_published;
  state.className = "state state-" + film.state;
  document.getElementById("draft-note").hidden = film.state !== "draft";
  // Only a draft that was never published can be deleted (the server refuses a film: 409).
  const deletion = document.getElementById("draft-delete");
  if (deletion) deletion.hidden = film.state !== "draft";
  const link = document.getElementById("page-link");
  if (film.page_url) {
    link.href = film.page_url;
    const ahead = film.meta.free_release && new Date(film.meta.free_release) > new Date();
    link.textContent = ahead ? S.countdown_page : S.public_page;
    link.hidden = false;
  }
  for (const kind of ["poster", "backdrop"]) {
    const img = document.getElementById("img-" + kind);
    const url = film[kind + "_url"];
    if (img && url) {
      img.src = url;
      img.hidden = false;
    }
  }
}

/** Deletes this draft and its images, once the operator confirms (`DELETE /admin/api/films/{slug}`). */
async function deleteDraft() {
  if (!window.confirm(S.delete_confirm)) return;
  const out = document.getElementById("delete-status");
  out.textContent = "";
  const { status: code, data } = await request("DELETE", "/admin/api/films/" + config.slug);
  if (code === 204) {
    out.textContent = S.deleted;
    location.assign("/admin/films");
    return;
  }
  out.textContent = (data && data.message) || S.failed;
}

async function submit(event) {
  event.preventDefault();
  clearErrors(form);
  status.textContent = "";
  const meta = collect();
  const answer =
    config.mode === "new"
      ? await request("POST", "/admin/api/films", { slug: field("slug").value.trim(), meta })
      : await request("PUT", "/admin/api/films/" + config.slug, meta);
  if (answer.status === 400 && answer.data?.errors) {
    showErrors(form, answer.data.errors);
    status.textContent = S.problems;
    return;
  }
  if (answer.status !== 200 && answer.status !== 201) {
    showErrors(form, [{ key: "*", message: answer.data?.message || S.failed + " (" + answer.status + ")" }]);
    status.textContent = S.failed;
    return;
  }
  if (config.mode === "new") {
    location.assign("/admin/films/" + answer.data.slug + "?created=1");
    return;
  }
  fill(answer.data.meta);
  showFilm(answer.data);
  status.textContent = S.saved;
}

async function upload(event) {
  event.preventDefault();
  const imageForm = event.currentTarget;
  const kind = imageForm.dataset.kind;
  clearErrors(imageForm);
  const file = imageForm.querySelector("input[type=file]").files[0];
  if (!file) return;
  const answer = await request(
    "PUT",
    `/admin/api/films/${config.slug}/${kind}`,
    file,
    file.type || "application/octet-stream",
  );
  if (answer.status === 200) {
    const img = document.getElementById("img-" + kind);
    img.src = answer.data.url;
    img.hidden = false;
    status.textContent = S.uploaded;
  } else {
    const errors = answer.data?.errors || [
      { key: kind, message: answer.data?.message || S.failed + " (" + answer.status + ")" },
    ];
    showErrors(imageForm, errors);
  }
}

async function showForm() {
  document.getElementById("age-rating-rule").textContent = config.age_rating_rule;
  form.addEventListener("submit", submit);
  for (const imageForm of document.querySelectorAll(".image-form")) {
    imageForm.addEventListener("submit", upload);
  }
  if (config.mode === "edit") {
    document.getElementById("delete-draft").addEventListener("click", deleteDraft);
    const { status: code, data } = await request("GET", "/admin/api/films/" + config.slug);
    if (code !== 200) {
      showErrors(form, [{ key: "*", message: data?.message || S.failed }]);
      return;
    }
    fill(data.meta);
    showFilm(data);
    if (new URLSearchParams(location.search).has("created")) status.textContent = S.created;
  }
  form.dataset.ready = "true";
}

// --- Media: the master, added tracks, and this film's jobs ---
//
// A file goes up with the tus protocol (upload.js: resumes after a cut or a reload), is
// checked by the server as the CLI checks it, then becomes a job (`POST /admin/api/jobs`):
// the ingest of the film for a master, a track added to it otherwise. The jobs of this film
// are polled with their state, progress, speed and time left.

const JOB_POLL_MS = 2000;

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s % 60).padStart(2, "0");
}

// Jobs whose log row is open; kept across the polls that redraw the table.
const openLogs = new Set();

/** The row under job `id` showing its log (`GET /admin/api/jobs/{id}/log`), oldest first. */
async function logRow(id) {
  const tr = document.createElement("tr");
  tr.className = "job-log";
  tr.id = "job-log-" + id;
  const td = document.createElement("td");
  td.colSpan = 7;
  tr.append(td);
  const { status, data } = await request("GET", `/admin/api/jobs/${id}/log`);
  if (status !== 200) {
    td.textContent = (data && data.message) || S.failed;
    return tr;
  }
  if (data.lines.length === 0) {
    td.textContent = S.no_log;
    return tr;
  }
  const list = document.createElement("ol");
  for (const { at, line, stage } of data.lines) {
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = at;
    time.textContent = dateTime.format(new Date(at));
    li.append(time, " ", stageText(stage, line));
    list.append(li);
  }
  td.append(list);
  return tr;
}

async function showJobs() {
  const { status, data } = await request("GET", "/admin/api/jobs?limit=100");
  if (status !== 200) return;
  const jobs = data.jobs.filter((j) => j.slug === config.slug);
  const logs = new Map();
  await Promise.all(
    jobs.filter((j) => openLogs.has(j.id)).map(async (j) => logs.set(j.id, await logRow(j.id))),
  );
  const rows = document.getElementById("job-rows");
  rows.replaceChildren();
  for (const job of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    tr.dataset.state = job.state;
    const cell = (content) => {
      const td = document.createElement("td");
      if (typeof content === "string") td.textContent = content;
      else td.append(content);
      tr.append(td);
    };
    cell(String(job.id) + " · " + job.master_name);
    cell(config.job_states[job.state] || job.state);
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = job.percent;
    bar.textContent = Math.round(job.percent) + " %";
    const pct = document.createElement("span");
    pct.className = "percent";
    pct.textContent = " " + job.percent.toFixed(1) + " %";
    const both = document.createElement("span");
    both.append(bar, pct);
    cell(both);
    cell(job.speed > 0 ? job.speed.toFixed(2) + "×" : "");
    cell(job.eta_s == null ? "" : clock(job.eta_s));
    cell(stageText(job.stage, job.message));
    const actions = document.createElement("span");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "button secondary log-toggle";
    toggle.setAttribute("aria-expanded", String(openLogs.has(job.id)));
    toggle.setAttribute("aria-controls", "job-log-" + job.id);
    toggle.textContent = openLogs.has(job.id) ? S.hide_log : S.show_log;
    toggle.addEventListener("click", () => {
      if (openLogs.has(job.id)) openLogs.delete(job.id);
      else openLogs.add(job.id);
      showJobs();
    });
    actions.append(toggle);
    if (job.state === "queued" || job.state === "running") {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "button secondary";
      cancel.textContent = S.cancel_job;
      cancel.addEventListener("click", () => request("POST", `/admin/api/jobs/${job.id}/cancel`).then(showJobs));
      actions.append(" ", cancel);
    }
    cell(actions);
    rows.append(tr);
    if (logs.has(job.id)) rows.append(logs.get(job.id));
  }
  document.getElementById("no-jobs").hidden = jobs.length > 0;
}

/** Uploads `file` for `kind`, then makes it a job with `extra` (`lang`, `label`). */
async function uploadAndQueue(file, kind, extra, bar, status) {
  const { startUpload } = await import(config.upload_js);
  const started = performance.now();
  bar.hidden = false;
  return new Promise((resolve) => {
    startUpload(file, {
      kind,
      hashWorker: config.upload_hash_js,
      sha256: config.sha256_js,
      onProgress: (p) => {
        bar.value = p.total ? Math.round((p.done / p.total) * 1000) : 0;
        const label = { hashing: S.hashing, uploading: S.uploading, checking: S.checking }[p.phase];
        let speed = "";
        if (p.phase === "uploading") {
          const mbps = p.done / 1e6 / Math.max(0.001, (performance.now() - started) / 1000);
          speed = " · " + mbps.toFixed(1) + " MB/s";
        }
        status.textContent = label + " " + Math.round((p.done / Math.max(1, p.total)) * 100) + " %" + speed;
      },
      onError: (message, rule) => {
        status.textContent = ruleText({ message, rule });
        status.dataset.state = "failed";
        resolve(null);
      },
      onSuccess: async (upload) => {
        const answer = await request("POST", "/admin/api/jobs", {
          upload: upload.id,
          slug: config.slug,
          ...extra,
        });
        if (answer.status === 201) {
          status.textContent = S.job_queued + " " + answer.data.id;
          status.dataset.state = "queued";
          showJobs();
          resolve(answer.data);
        } else {
          // A refused file (an audio track not as long as the film) names its rule.
          status.textContent = answer.data?.message
            ? ruleText({ message: answer.data.message, rule: answer.data.rule })
            : S.failed + " (" + answer.status + ")";
          status.dataset.state = "failed";
          resolve(null);
        }
      },
    });
  });
}

// An upload's kind and state (as `/admin/api/uploads` names them) in the page's language.
const UPLOAD_KINDS = { master: S.master, audio: S.track_audio, subtitles: S.track_subtitles };
const UPLOAD_STATES = { uploading: S.uploading, verifying: S.checking, ready: S.upload_ready, failed: S.upload_refused };

/** Every upload the server holds (any operator's, any tab), with its progress and speed. */
async function showUploads() {
  const { status, data } = await request("GET", "/admin/api/uploads");
  if (status !== 200) return;
  const rows = document.getElementById("upload-rows");
  rows.replaceChildren();
  for (const upload of data.uploads) {
    const tr = document.createElement("tr");
    tr.dataset.state = upload.state;
    const cell = (text) => {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    };
    cell(upload.filename);
    cell(UPLOAD_KINDS[upload.kind] || upload.kind);
    const state = UPLOAD_STATES[upload.state] || upload.state;
    // A refusal in the page's language when it names its rule; else the checks' own words.
    cell(upload.state === "failed" ? state + ": " + ruleText({ message: upload.reason, rule: upload.rule }) : state);
    cell(Math.floor((upload.offset / Math.max(1, upload.length)) * 100) + " %");
    cell(upload.bytes_per_s > 0 ? (upload.bytes_per_s / 1e6).toFixed(2) + " MB/s" : "");
    rows.append(tr);
  }
  document.getElementById("no-uploads").hidden = data.uploads.length > 0;
}

function showMedia() {
  const master = document.getElementById("master-form");
  master.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = document.getElementById("master-file").files[0];
    if (!file) return;
    uploadAndQueue(file, "master", {}, document.getElementById("master-progress"),
      document.getElementById("master-status"));
  });
  const track = document.getElementById("track-form");
  track.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = document.getElementById("track-file").files[0];
    if (!file) return;
    const extra = { lang: document.getElementById("track-lang").value.trim() };
    const label = document.getElementById("track-label").value.trim();
    if (label) extra.label = label;
    uploadAndQueue(file, document.getElementById("track-kind").value, extra,
      document.getElementById("track-progress"), document.getElementById("track-status"));
  });
  showJobs();
  showUploads();
  setInterval(() => {
    showJobs();
    showUploads();
  }, JOB_POLL_MS);
}

if (config.mode === "list") showList();
else showForm();
if (document.getElementById("media")) showMedia();
