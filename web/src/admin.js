// Operator dashboard: polls /admin/api/dashboard every 5 s and draws the figures with uPlot.
// Concurrent viewers get a live line from the polls on top of the minute history. The ingest
// jobs (/admin/api/jobs) are polled as often, in a table shown when the server has a job
// queue (every `monsoon serve` does; a server built without one answers 404, and the section
// stays hidden). The audit log (/admin/api/audit) is polled too, newest first, with a button
// for older entries. Every request goes through `adminFetch` (admin-fetch.js): the session's
// CSRF token on state changes, and back to the sign-in form, in the page's language, once the
// session has ended.
(function () {
  "use strict";
  var S = JSON.parse(document.getElementById("dash-strings").textContent);
  var select = document.getElementById("film");
  var POLL_MS = 5000;
  var charts = {};
  var live = { film: null, points: [] }; // [seconds, concurrent] from each poll

  var lang = document.documentElement.lang;
  // Axes and dates as the page's readers write them: 24-hour times and day/month dates, in
  // Vietnamese (vi-VN) or British English (en-GB; plain "en" would be 12-hour, month first).
  var locale = lang === "en" ? "en-GB" : "vi-VN";
  var fmt = new Intl.NumberFormat(locale);
  var hhmm = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  // Day/month as both languages write it by hand, dd/mm (ICU's vi-VN short form is "dd-MM").
  var dayMonth = new Intl.DateTimeFormat(locale, { day: "2-digit", month: "2-digit" });
  var ddmm = {
    format: function (d) {
      var parts = {};
      dayMonth.formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
      return parts.day + "/" + parts.month;
    },
  };
  var clock = function (ms) {
    return new Date(ms).toLocaleTimeString(locale, { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  };
  var set = function (id, text) { document.getElementById(id).textContent = text; };
  var pct = function (x) { return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 }).format(x); };
  // Bytes in the SI units a network operator reads (kB, MB, GB).
  var bytes = function (n) {
    var units = ["B", "kB", "MB", "GB", "TB", "PB"];
    var i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return new Intl.NumberFormat(locale, { maximumFractionDigits: n < 10 && i > 0 ? 1 : 0 }).format(n) + " " + units[i];
  };

  // Time ticks: hh:mm, with the day/month under the first tick and wherever the day changes.
  function timeTicks(u, splits) {
    var lastDay = null;
    var labels = splits.map(function (t) {
      var d = new Date(t * 1000);
      var day = ddmm.format(d);
      var label = hhmm.format(d) + (day !== lastDay ? "\n" + day : "");
      lastDay = day;
      return label;
    });
    u.root.parentNode.dataset.xTicks = JSON.stringify(labels);
    return labels;
  }
  // Value ticks in the chart's unit; the labels are kept on the element for tests and tools.
  function valueTicks(format) {
    return function (u, splits) {
      var labels = splits.map(format);
      u.root.parentNode.dataset.yTicks = JSON.stringify(labels);
      return labels;
    };
  }
  // Whole numbers only for counts: the scale starts at 0 and spans at least 1, the ticks step
  // by whole numbers.
  var COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];
  var UNITS = {
    count: { format: function (v) { return fmt.format(v); }, incrs: COUNT_INCRS, range: function (u, min, max) { return [0, Math.max(1, Math.ceil(max))]; } },
    percent: { format: function (v) { return new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(v) + " %"; }, range: function (u, min, max) { return [0, Math.max(1, max)]; } },
    ms: { format: function (v) { return fmt.format(v) + " ms"; }, incrs: COUNT_INCRS, range: function (u, min, max) { return [0, Math.max(100, 1.15 * max)]; } },
    rate: { format: function (v) { return bytes(v) + "/s"; }, range: function (u, min, max) { return [0, Math.max(1000, 1.15 * max)]; } },
  };

  function chart(id, lines, unit) {
    var el = document.getElementById(id);
    var u = UNITS[unit];
    var axis = { stroke: "#9da7b3", grid: { stroke: "#30363d" }, ticks: { stroke: "#30363d" } };
    var y = Object.assign({}, axis, { values: valueTicks(u.format), size: 70 });
    if (u.incrs) y.incrs = u.incrs;
    var opts = {
      width: el.clientWidth || 300, height: 220,
      series: [{}].concat(lines.map(function (l) {
        return { label: l.label, stroke: l.color, width: 2, fill: l.color + "22" };
      })),
      scales: { y: { range: u.range } },
      axes: [Object.assign({}, axis, { values: timeTicks, size: 48 }), y],
      // Several lines: their names and colours under the chart, without the hover values.
      legend: { show: lines.length > 1, live: false },
    };
    return new uPlot(opts, [[]].concat(lines.map(function () { return []; })), el);
  }
  function columns(points) {
    return [points.map(function (p) { return p[0] / 1000; }), points.map(function (p) { return p[1]; })];
  }
  // Several series on one time axis: the union of their times, null where one has none.
  function merged(list) {
    var times = {};
    list.forEach(function (points) { points.forEach(function (p) { times[p[0]] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    return [xs.map(function (t) { return t / 1000; })].concat(list.map(function (points) {
      var at = {};
      points.forEach(function (p) { at[p[0]] = p[1]; });
      return xs.map(function (t) { return t in at ? at[t] : null; });
    }));
  }

  var NETWORKS = ["slow-2g", "2g", "3g", "4g", "unknown"];
  var networkName = function (n) { return n === "unknown" ? S.network_unknown : n; };
  var rungName = function (h) { return String(h) === "0" ? S.audio_only : h + "p"; };

  // Sessions watching by rung over the day: one line a rung anyone watched at (the server's
  // `rungs`, lowest first; drawn highest first), so the chart is made again when they change.
  var RUNG_COLORS = ["#e5534b", "#c69026", "#57ab5a", "#6cb6ff", "#b083f0", "#39c5cf", "#ff938a", "#9da7b3"];
  var rungsShown = null;
  function rungLines(rungs) {
    var order = rungs.slice().sort(function (a, b) { return b - a; });
    var key = order.join(",");
    if (key !== rungsShown) {
      rungsShown = key;
      if (charts.rungs) charts.rungs.destroy();
      charts.rungs = chart("chart-rungs-day", order.map(function (h, i) {
        return { label: rungName(h), color: RUNG_COLORS[i % RUNG_COLORS.length] };
      }), "count");
      // The lines drawn, by name, for tests and tools.
      document.getElementById("chart-rungs-day").dataset.series = JSON.stringify(order.map(rungName));
    }
    return order;
  }

  function draw(d) {
    var s = d.stats;
    set("s-concurrent", fmt.format(s.concurrent_viewers));
    set("s-peak", fmt.format(s.peak_concurrent_viewers) +
      (s.peak_at ? " · " + clock(s.peak_at) : ""));
    set("s-views", fmt.format(s.views));
    set("s-views24", fmt.format(s.views_24h));
    set("s-unique", fmt.format(s.unique_viewers_24h));
    set("s-hours", new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(s.playing_time_s / 3600));
    set("s-startup", (s.startup_ms_p50 == null ? "–" : fmt.format(s.startup_ms_p50) + " ms") + " / " +
      (s.startup_ms_p95 == null ? "–" : fmt.format(s.startup_ms_p95) + " ms"));
    set("s-rebuffer", pct(s.rebuffer_ratio));
    set("s-completion", pct(s.completion_rate));
    set("s-failures", fmt.format(s.failures));
    set("s-exits", fmt.format(s.exits_before_start));
    set("s-suspicious", fmt.format(s.suspicious_sessions));
    set("updated", S.updated + " " + clock(d.now));
    // Why "Views" can stay 0 while viewers are counted: the threshold, as the server has it.
    set("view-threshold", S.view_threshold.replace("{s}", fmt.format(d.view_threshold_s)));
    var o = d.origin;
    set("s-offload", o.offload_1h.ratio == null ? S.offload_none : pct(o.offload_1h.ratio));
    set("s-offload-since", S.since + " " + clock(o.offload_1h.from) + " · " +
      bytes(o.offload_1h.egress_bytes) + " / " + bytes(o.offload_1h.player_bytes));

    if (live.film !== s.film) live = { film: s.film, points: [] };
    live.points.push([d.now, s.concurrent_viewers]);
    var since = d.now - 3600 * 1000;
    var history = d.series.concurrent_viewers.filter(function (p) { return p[0] >= since; });
    var lastMinute = history.length ? history[history.length - 1][0] : 0;
    var concurrent = history.concat(live.points.filter(function (p) { return p[0] > lastMinute; }));
    // Fixed windows, so a chart with one point is not stretched over years.
    var show = function (c, data, from) {
      c.setData(data, false);
      c.setScale("x", { min: from / 1000, max: d.now / 1000 });
    };
    show(charts.concurrent, columns(concurrent), since);
    var day = d.now - 24 * 3600 * 1000;
    show(charts.views, columns(d.series.views), day);
    show(charts.startup, columns(d.series.startup_ms_p95), day);
    show(charts.rebuffer, columns(d.series.rebuffer_ratio.map(function (p) { return [p[0], 100 * p[1]]; })), day);
    show(charts.egress, merged([o.egress, o.players]), day);
    show(charts.networks, merged(NETWORKS.map(function (n) { return d.series["network:" + n] || []; })), day);
    var rungs = rungLines(d.rungs || []);
    show(charts.rungs, merged(rungs.map(function (h) { return d.series["rung:" + h] || []; })), day);

    // Share of playing time by rung, as bars.
    var total = Object.values(s.rungs).reduce(function (a, b) { return a + b; }, 0) || 1;
    bars("chart-rungs", Object.keys(s.rungs).sort(function (a, b) { return b - a; }).map(function (h) {
      var share = s.rungs[h] / total;
      return { label: h === "0" ? S.audio_only : h + "p", share: share, value: pct(share) };
    }));
    // By codec: share of playing time as bars, the sessions playing each and the bytes.
    var codecs = s.codecs || {};
    var names = { h264: "H.264", av1: "AV1" };
    var time = Object.keys(codecs).reduce(function (a, c) { return a + codecs[c].playing_time_s; }, 0) || 1;
    bars("chart-codecs", Object.keys(codecs).sort().map(function (c) {
      var share = codecs[c].playing_time_s / time;
      return {
        label: names[c] || c, share: share,
        value: pct(share) + " · " + fmt.format(codecs[c].sessions) + " " + S.codec_sessions +
          " · " + bytes(codecs[c].bytes || 0) + " " + S.codec_downloaded,
      };
    }));
    // Sessions watching now by network type and by rung.
    var counted = function (map, label, order) {
      var sum = Object.values(map).reduce(function (a, b) { return a + b; }, 0) || 1;
      return Object.keys(map).sort(order).map(function (k) {
        return { label: label(k), share: map[k] / sum, value: fmt.format(map[k]) };
      });
    };
    bars("chart-networks", counted(s.watching_by_network || {}, networkName, function (a, b) { return NETWORKS.indexOf(a) - NETWORKS.indexOf(b); }));
    bars("chart-watching-rungs", counted(s.watching_by_rung || {}, function (h) {
      return h === "0" ? S.audio_only : h + "p";
    }, function (a, b) { return b - a; }));
    // Origin errors by object class, and the players' fatal errors.
    var failed = o.failed_24h;
    var worst = Object.keys(failed).reduce(function (m, c) { return Math.max(m, failed[c].client + failed[c].server); }, 0) || 1;
    bars("chart-errors", Object.keys(failed).map(function (c) {
      var f = failed[c];
      return {
        label: c, share: (f.client + f.server) / worst,
        value: S.failed_client + " " + fmt.format(f.client) + " · " + S.failed_server + " " + fmt.format(f.server),
      };
    }));
    set("players-fatal", S.players_fatal + ": " + fmt.format(s.failures));
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
      value.className = "value";
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
  var one = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var two = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  // Seconds as h:mm:ss, as `monsoon jobs` prints them.
  var hms = function (seconds) {
    var s = Math.max(0, Math.round(seconds));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
  };

  // A job's stage in the page's language: the template of its name (`S.stages`) with its
  // values written in, or the job's English message when it has no stage.
  // A failed job whose file broke a rule says the rule (`S.rules`, the studio's templates).
  function stageText(stage, message) {
    var values = stage && stage.name === "failed" && stage.rule ? stage.rule : stage;
    var template = values && (values === stage ? S.stages : S.rules)[values.name];
    if (!template) return message;
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      var value = values[name];
      if (value == null) return whole;
      return typeof value === "number" ? fmt.format(value) : String(value);
    });
  }

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
      var message = cell(stageText(j.stage, j.message), "message");
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

  charts.concurrent = chart("chart-concurrent", [{ label: S.concurrent, color: "#e5534b" }], "count");
  charts.views = chart("chart-views", [{ label: S.views, color: "#57ab5a" }], "count");
  charts.startup = chart("chart-startup", [{ label: S.startup, color: "#c69026" }], "ms");
  charts.rebuffer = chart("chart-rebuffer", [{ label: S.rebuffer, color: "#6cb6ff" }], "percent");
  charts.egress = chart("chart-egress", [
    { label: S.origin_sent, color: "#e5534b" },
    { label: S.players_bytes, color: "#57ab5a" },
  ], "rate");
  charts.networks = chart("chart-networks-day", NETWORKS.map(function (n, i) {
    return { label: networkName(n), color: ["#ff938a", "#c69026", "#6cb6ff", "#57ab5a", "#9da7b3"][i] };
  }), "count");
  var csv = document.getElementById("csv");
  var csvLink = function () {
    csv.href = "/admin/api/dashboard.csv?film=" + encodeURIComponent(select.value);
  };
  csvLink();
  select.addEventListener("change", csvLink);
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
