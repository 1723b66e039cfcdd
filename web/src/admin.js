// Operator dashboard: polls /admin/api/dashboard every 5 s and draws the figures with uPlot.
// Concurrent viewers get a live line from the polls on top of the minute history. The ingest
// jobs (/admin/api/jobs) are polled as often, in a table shown only when the server has a job
// queue (a PostgreSQL database): a 404 says it has none, and the section stays hidden. The
// audit log (/admin/api/audit) is polled too, newest first, with a button for older entries.
// Every request goes through `adminFetch` (admin-fetch.js): the session's CSRF token on
// state changes, and back to the sign-in form once the session has ended.
(function () {
  "use strict";
  var S = JSON.parse(document.getElementById("dash-strings").textContent);
  var select = document.getElementById("film");
  var POLL_MS = 5000;
  var charts = {};
  var live = { film: null, points: [] }; // [seconds, concurrent] from each poll

  var lang = document.documentElement.lang;
  var fmt = new Intl.NumberFormat(lang);
  var clock = function (ms) { return new Date(ms).toLocaleTimeString(lang, { hour12: false }); };
  var set = function (id, text) { document.getElementById(id).textContent = text; };
  var pct = function (x) { return (100 * x).toFixed(1) + " %"; };

  function chart(id, label, color) {
    var el = document.getElementById(id);
    var opts = {
      width: el.clientWidth || 480, height: 220,
      series: [{}, { label: label, stroke: color, width: 2, fill: color + "22" }],
      axes: [{ stroke: "#9da7b3", grid: { stroke: "#30363d" } }, { stroke: "#9da7b3", grid: { stroke: "#30363d" } }],
      legend: { show: false },
    };
    return new uPlot(opts, [[], []], el);
  }
  function columns(points) {
    return [points.map(function (p) { return p[0] / 1000; }), points.map(function (p) { return p[1]; })];
  }

  function draw(d) {
    var s = d.stats;
    set("s-concurrent", fmt.format(s.concurrent_viewers));
    set("s-peak", fmt.format(s.peak_concurrent_viewers) +
      (s.peak_at ? " · " + clock(s.peak_at) : ""));
    set("s-views", fmt.format(s.views));
    set("s-views24", fmt.format(s.views_24h));
    set("s-unique", fmt.format(s.unique_viewers_24h));
    set("s-hours", new Intl.NumberFormat(lang, { maximumFractionDigits: 2 }).format(s.playing_time_s / 3600));
    set("s-startup", (s.startup_ms_p50 == null ? "–" : s.startup_ms_p50 + " ms") + " / " +
      (s.startup_ms_p95 == null ? "–" : s.startup_ms_p95 + " ms"));
    set("s-rebuffer", pct(s.rebuffer_ratio));
    set("s-completion", pct(s.completion_rate));
    set("s-failures", fmt.format(s.failures));
    set("s-exits", fmt.format(s.exits_before_start));
    set("s-suspicious", fmt.format(s.suspicious_sessions));
    set("updated", S.updated + " " + clock(d.now));

    if (live.film !== s.film) live = { film: s.film, points: [] };
    live.points.push([d.now, s.concurrent_viewers]);
    var since = d.now - 3600 * 1000;
    var history = d.series.concurrent_viewers.filter(function (p) { return p[0] >= since; });
    var lastMinute = history.length ? history[history.length - 1][0] : 0;
    var concurrent = history.concat(live.points.filter(function (p) { return p[0] > lastMinute; }));
    // Fixed windows, so a chart with one point is not stretched over years.
    var show = function (c, points, from) {
      c.setData(columns(points), false);
      c.setScale("x", { min: from / 1000, max: d.now / 1000 });
    };
    show(charts.concurrent, concurrent, since);
    var day = d.now - 24 * 3600 * 1000;
    show(charts.views, d.series.views, day);
    show(charts.startup, d.series.startup_ms_p95, day);
    show(charts.rebuffer, d.series.rebuffer_ratio, day);

    // Share of playing time by rung, as bars.
    var total = Object.values(s.rungs).reduce(function (a, b) { return a + b; }, 0) || 1;
    bars("chart-rungs", Object.keys(s.rungs).sort(function (a, b) { return b - a; }).map(function (h) {
      var share = s.rungs[h] / total;
      return { label: h === "0" ? S.audio_only : h + "p", share: share, value: pct(share) };
    }));
    // By codec: share of playing time as bars, and the sessions playing each.
    var codecs = s.codecs || {};
    var names = { h264: "H.264", av1: "AV1" };
    var time = Object.keys(codecs).reduce(function (a, c) { return a + codecs[c].playing_time_s; }, 0) || 1;
    bars("chart-codecs", Object.keys(codecs).sort().map(function (c) {
      var share = codecs[c].playing_time_s / time;
      return {
        label: names[c] || c, share: share,
        value: pct(share) + " · " + fmt.format(codecs[c].sessions) + " " + S.codec_sessions,
      };
    }));
  }

  // Rows of labelled bars (`share` of the whole) in the element `id`.
  function bars(id, rows) {
    var el = document.getElementById(id);
    el.replaceChildren();
    rows.forEach(function (r) {
      var row = document.createElement("div");
      row.className = "rung";
      var p = (100 * r.share).toFixed(1) + "%";
      var label = document.createElement("span");
      label.textContent = r.label;
      // Styled through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.style.background = "linear-gradient(90deg,#e5534b " + p + ",#30363d " + p + ")";
      var value = document.createElement("span");
      value.textContent = r.value;
      row.append(label, bar, value);
      el.appendChild(row);
    });
  }

  function poll() {
    if (!select.value) return;
    adminFetch("/admin/api/dashboard?film=" + encodeURIComponent(select.value))
      .then(function (r) { return r.json(); })
      .then(draw)
      .catch(function () { /* the next poll retries */ });
  }

  // --- Ingest jobs ------------------------------------------------------------------------
  var jobs = document.getElementById("jobs");
  var one = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var two = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  // Seconds as h:mm:ss, as `monsoon jobs` prints them.
  var hms = function (seconds) {
    var s = Math.max(0, Math.round(seconds));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  };

  function drawJobs(d) {
    var rows = document.getElementById("jobs-rows");
    rows.replaceChildren();
    d.jobs.forEach(function (j) {
      var tr = document.createElement("tr");
      var cell = function (text, className) {
        var td = document.createElement("td");
        td.textContent = text;
        if (className) td.className = className;
        tr.appendChild(td);
        return td;
      };
      cell(String(j.id), "num");
      var film = cell(j.slug);
      var name = document.createElement("span");
      name.className = "master";
      name.textContent = j.master_name;
      film.appendChild(name);
      cell(S.states[j.state] || j.state, "state state-" + j.state);
      var progress = cell("", "progress");
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = j.percent;
      bar.setAttribute("aria-label", S.progress + " " + j.slug);
      var percent = document.createElement("span");
      percent.textContent = one.format(j.percent) + " %";
      progress.append(bar, percent);
      cell(j.state === "running" && j.speed > 0 ? two.format(j.speed) + S.real_time : "–", "num");
      cell(j.eta_s == null ? "–" : hms(j.eta_s), "num");
      cell(j.attempts + " / " + j.max_attempts, "num");
      var message = cell(j.message, "message");
      if (j.lease_owner) message.title = j.lease_owner;
      rows.appendChild(tr);
    });
    document.getElementById("jobs-empty").hidden = d.jobs.length > 0;
    jobs.hidden = false;
  }

  var jobsTimer = null;
  function pollJobs() {
    adminFetch("/admin/api/jobs")
      .then(function (r) {
        if (r.status === 404) {
          // No job queue on this server: nothing to show, nothing more to ask.
          jobs.hidden = true;
          jobs.dataset.queue = "none";
          clearInterval(jobsTimer);
          throw new Error("no job queue");
        }
        if (!r.ok) throw new Error("jobs: " + r.status);
        return r.json();
      })
      .then(function (d) {
        drawJobs(d);
        jobs.dataset.queue = "yes";
      })
      .catch(function () { /* the next poll retries */ });
  }

  // --- Audit log ---------------------------------------------------------------------------
  var AUDIT_PAGE = 50;
  var audit = { newest: [], older: [], end: false };
  var when = function (iso) {
    var d = new Date(iso);
    return d.toLocaleDateString(lang, { day: "2-digit", month: "2-digit" }) + " " +
      d.toLocaleTimeString(lang, { hour12: false });
  };

  function drawAudit() {
    var rows = document.getElementById("audit-rows");
    rows.replaceChildren();
    var entries = audit.newest.concat(audit.older);
    entries.forEach(function (e) {
      var tr = document.createElement("tr");
      tr.dataset.action = e.action;
      var cell = function (text, className) {
        var td = document.createElement("td");
        td.textContent = text;
        if (className) td.className = className;
        tr.appendChild(td);
      };
      cell(when(e.at), "num");
      cell(e.actor);
      cell((S.actions && S.actions[e.action]) || e.action, "state action-" + e.action);
      cell(e.subject);
      var detail = e.detail && typeof e.detail === "object" ? Object.keys(e.detail).map(function (k) {
        var v = e.detail[k];
        return k + ": " + (typeof v === "string" ? v : JSON.stringify(v));
      }).join(" · ") : JSON.stringify(e.detail);
      cell(detail, "message");
      rows.appendChild(tr);
    });
    document.getElementById("audit-empty").hidden = entries.length > 0;
    document.getElementById("audit-older").hidden = audit.end || entries.length < AUDIT_PAGE;
  }

  function pollAudit() {
    adminFetch("/admin/api/audit?limit=" + AUDIT_PAGE)
      .then(function (r) {
        if (!r.ok) throw new Error("audit: " + r.status);
        return r.json();
      })
      .then(function (d) {
        var oldest = d.entries.length ? d.entries[d.entries.length - 1].id : 0;
        // Older pages already loaded stay, below the newest page.
        audit.older = audit.older.filter(function (e) { return e.id < oldest; });
        audit.newest = d.entries;
        if (d.entries.length < AUDIT_PAGE) audit.end = true;
        drawAudit();
      })
      .catch(function () { /* the next poll retries */ });
  }

  document.getElementById("audit-older").addEventListener("click", function () {
    var entries = audit.newest.concat(audit.older);
    if (!entries.length) return;
    adminFetch("/admin/api/audit?limit=" + AUDIT_PAGE + "&before=" + entries[entries.length - 1].id)
      .then(function (r) { return r.json(); })
      .then(function (d) {
        audit.older = audit.older.concat(d.entries);
        if (d.entries.length < AUDIT_PAGE) audit.end = true;
        drawAudit();
      })
      .catch(function () { /* the button stays */ });
  });

  charts.concurrent = chart("chart-concurrent", S.concurrent, "#e5534b");
  charts.views = chart("chart-views", S.views, "#57ab5a");
  charts.startup = chart("chart-startup", S.startup, "#c69026");
  charts.rebuffer = chart("chart-rebuffer", S.rebuffer, "#6cb6ff");
  addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) {
      var el = charts[k].root.parentNode;
      charts[k].setSize({ width: el.clientWidth, height: 220 });
    });
  });
  select.addEventListener("change", poll);
  poll();
  setInterval(poll, POLL_MS);
  jobsTimer = setInterval(pollJobs, POLL_MS);
  pollJobs();
  setInterval(pollAudit, POLL_MS);
  pollAudit();
})();
