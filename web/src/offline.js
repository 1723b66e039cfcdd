// Saving a film for offline viewing: the watch page's "Watch without a connection" section.
//
// The film is saved into one Cache Storage cache per film ("monsoon-offline-<slug>"), which
// the service worker (web/src/sw.js) answers from: the chosen rung's media playlists, init and
// every segment, a multivariant playlist naming only that rung, and the watch page with its
// scripts. Saving goes object by object and skips what the cache holds, so after a cut, a
// closed tab or a reload it resumes where it stopped; its state is kept in localStorage
// ("monsoon.offline.<slug>"). The browser is asked to keep the storage (persistent storage)
// and the size is checked against the quota before the first byte.
//
// Counting an offline viewing: a session is minted, and its proof of work found, while the
// viewer is online (when the film is saved, and again after each offline viewing). The player
// uses it when it cannot mint (web/src/player.js), keeping its cumulative counters here; when
// the connection returns they go to the server as two beats of that session, a start and the
// total (docs/AUDIENCE.md: the playing time is plausible since the session was minted long
// before, and a second flush is a duplicate), so the viewing is counted once.
(function () {
  "use strict";
  var section = document.getElementById("offline");
  var configEl = document.getElementById("offline-config");
  if (!section || !configEl) return;
  var config = JSON.parse(configEl.textContent);
  var player = JSON.parse(document.getElementById("player-config").textContent);
  var S = config.strings;
  var KEY = "monsoon.offline." + config.film;
  var CACHE = "monsoon-offline-" + config.film;
  var MASTER = "/media/" + encodeURIComponent(config.film) + "/master.m3u8";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("offline-form"), progress = $("offline-progress"), status = $("offline-status");
  var remove = $("offline-delete");
  var say = function (text) { status.textContent = text; };

  function state() {
    try { return JSON.parse(localStorage.getItem(KEY)) || null; } catch (e) { return null; }
  }
  function setState(s) {
    try {
      if (s) localStorage.setItem(KEY, JSON.stringify(s)); else localStorage.removeItem(KEY);
    } catch (e) { /* private mode: nothing is kept */ }
  }
  // `fetched`: objects this page took from the network while saving (the rest were saved).
  // The player (web/src/player.js) reads and writes the same state by the same key.
  window.monsoonOffline = { state: state, setState: setState, fetched: 0 };

  if (!("serviceWorker" in navigator) || !window.caches || !window.isSecureContext) {
    // Service workers need a secure context (https, or this machine).
    return;
  }
  section.hidden = false;

  var text = function (r) { if (!r.ok) throw new Error(r.url + ": " + r.status); return r.text(); };
  var attrs = function (list) {
    var out = {};
    list.replace(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g, function (_m, k, v) { out[k] = v.replace(/^"|"$/g, ""); });
    return out;
  };

  // What to save: the rung and sound `kind` asks for, from the multivariant playlist (RFC 8216
  // §4.3.4), and a multivariant playlist that names only them.
  function plan(kind) {
    var base = new URL(MASTER, location.href);
    return fetch(MASTER, { cache: "no-store" }).then(text).then(function (master) {
      var lines = master.split(/\r?\n/), video = null, sounds = {}, audioOnly = null;
      lines.forEach(function (line, i) {
        if (line.indexOf("#EXT-X-MEDIA:") === 0) {
          var m = attrs(line.slice(13));
          if (m.TYPE === "AUDIO" && m.URI && !sounds[m["GROUP-ID"]]) sounds[m["GROUP-ID"]] = line;
        } else if (line.indexOf("#EXT-X-STREAM-INF:") === 0) {
          var a = attrs(line.slice(18)), v = { line: line, uri: lines[i + 1], bw: +a.BANDWIDTH, audio: a.AUDIO };
          if (a.RESOLUTION) { if (!video || v.bw < video.bw) video = v; }
          else if (!audioOnly || v.bw < audioOnly.bw) audioOnly = v;
        }
      });
      var head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n";
      var saved, playlists;
      if (kind === "audio" && audioOnly) {
        saved = head + audioOnly.line + "\n" + audioOnly.uri + "\n";
        playlists = [audioOnly.uri];
      } else if (video) {
        var sound = sounds[video.audio];
        saved = head + (sound ? sound + "\n" : "") + video.line + "\n" + video.uri + "\n";
        playlists = [video.uri].concat(sound ? [attrs(sound.slice(13)).URI] : []);
      } else {
        throw new Error("no rung to save");
      }
      return Promise.all(playlists.map(function (uri) {
        var url = new URL(uri, base);
        return fetch(url).then(text).then(function (body) {
          var urls = [url.pathname];
          body.split(/\r?\n/).forEach(function (line) {
            var map = /^#EXT-X-MAP:URI="([^"]+)"/.exec(line);
            if (map) urls.push(new URL(map[1], url).pathname);
            else if (line && line[0] !== "#") urls.push(new URL(line, url).pathname);
          });
          return urls;
        });
      })).then(function (lists) {
        return { master: saved, urls: config.shell.concat.apply(config.shell, lists) };
      });
    });
  }

  var running = false;
  function save(kind, bytes) {
    if (running) return;
    running = true;
    var s = state() || {};
    s.state = "saving"; s.kind = kind; s.bytes = bytes;
    setState(s);
    form.hidden = true;
    progress.hidden = false;
    remove.hidden = false;
    say(S.saving + "…");
    var cache;
    navigator.serviceWorker.register(config.sw, { scope: "/" }).then(function () {
      if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(function () {});
      return navigator.storage && navigator.storage.estimate ? navigator.storage.estimate() : null;
    }).then(function (room) {
      if (room && room.quota && room.quota - room.usage < bytes * 1.1) {
        var mb = function (n) { return (n / 1e6).toFixed(1) + " MB"; };
        throw { quota: S.no_space + ": " + mb(bytes) + " > " + mb(room.quota - room.usage) };
      }
      return Promise.all([caches.open(CACHE), plan(kind)]);
    }).then(function (both) {
      cache = both[0];
      var urls = both[1].urls, done = 0;
      progress.max = urls.length;
      var next = function () {
        if (done === urls.length) return null;
        var url = urls[done];
        return cache.match(url).then(function (hit) {
          if (hit) return null;
          return fetch(url).then(function (r) {
            if (!r.ok) throw new Error(url + ": " + r.status);
            window.monsoonOffline.fetched += 1;
            return cache.put(url, r);
          });
        }).then(function () {
          done += 1;
          progress.value = done;
          say(S.saving + " " + Math.floor(100 * done / urls.length) + " %");
          return next();
        });
      };
      return Promise.resolve(next()).then(function () {
        // The playlist naming only the saved rung, last: offline, the film is whole or absent.
        return cache.put(MASTER, new Response(both[1].master, {
          headers: { "Content-Type": "application/vnd.apple.mpegurl" },
        }));
      });
    }).then(function () {
      running = false;
      var s2 = state() || {};
      s2.state = "done";
      setState(s2);
      showSaved();
      spare();
    }).catch(function (e) {
      running = false;
      if (e && e.quota) { fail().then(function () { say(e.quota); }); return; }
      if (e && e.name === "QuotaExceededError") {
        // The estimate was too kind: the storage filled up mid-way. Nothing half-saved stays.
        fail().then(function () { say(S.no_space); });
        return;
      }
      if (!navigator.onLine || e instanceof TypeError) {
        // A cut: carry on from here when the connection returns.
        say(S.paused);
        addEventListener("online", function () { save(kind, bytes); }, { once: true });
        return;
      }
      say(S.failed + ": " + (e && e.message || e));
    });
  }
  function fail() {
    setState(null);
    form.hidden = false;
    progress.hidden = true;
    remove.hidden = true;
    return caches.delete(CACHE);
  }
  function showSaved() {
    form.hidden = true;
    progress.hidden = true;
    remove.hidden = false;
    say(S.saved);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var choice = form.querySelector("input[name=offline-kind]:checked");
    save(choice.value, Number(choice.dataset.bytes) || 0);
  });
  remove.addEventListener("click", function () {
    running = false;
    fail().then(function () { say(""); });
  });

  // ---- Counting offline viewings -----------------------------------------------------------
  // A spare session, minted and proven while online, for the next offline viewing.
  function spare() {
    var s = state();
    if (!s || s.state !== "done" || s.spare || !navigator.onLine) return;
    fetch("/api/v1/films/" + encodeURIComponent(config.film) + "/sessions", {
      method: "POST", body: JSON.stringify({ viewer_id: localStorage.getItem("monsoon.viewer") || "" }),
      headers: { "Content-Type": "application/json" },
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (session) {
      if (!session) return;
      var keep = function (proof) {
        var now = state();
        if (!now || now.spare) return;
        now.spare = { session_id: session.session_id, token: session.token, proof: proof };
        setState(now);
      };
      if (!session.proof_bits) { keep("0"); return; }
      var worker = new Worker(player.proof_worker);
      worker.onmessage = function (e) { worker.terminate(); keep(e.data); };
      worker.postMessage({ sha256: player.sha256_js, session: session.session_id, bits: session.proof_bits });
    }).catch(function () {});
  }

  // The counters of an offline viewing, sent as a start and a total once online.
  var flushing = false;
  function flush() {
    var s = state();
    if (flushing || !s || !s.pending || !navigator.onLine) return;
    flushing = true;
    var p = s.pending;
    var url = "/api/v1/sessions/" + encodeURIComponent(p.session_id) + "/heartbeat";
    var beat = function (seq, counters, playState) {
      var body = Object.assign({}, counters, { token: p.token, proof: p.proof, seq: seq, state: playState });
      return fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" } });
    };
    var zero = {};
    // Counters start at zero; what is not a counter (the `codec` named) stays as it was.
    Object.keys(p.counters).forEach(function (k) {
      var v = p.counters[k];
      zero[k] = typeof v === "boolean" ? false : typeof v === "number" ? 0 : v;
    });
    beat(1, zero, "paused").then(function (first) {
      if (first.status >= 400 && first.status < 500) return first; // expired or refused: not countable
      // The server's minimum gap between two beats of a session (docs/AUDIENCE.md, 5 s).
      return new Promise(function (resolve) { setTimeout(resolve, 6000); }).then(function () {
        return beat(2, p.counters, p.state === "ended" ? "ended" : "paused");
      });
    }).then(function (last) {
      flushing = false;
      if (last.status === 429 || last.status >= 500) return; // try again later
      var now = state();
      if (now) { delete now.pending; setState(now); }
      spare();
    }).catch(function () { flushing = false; });
  }
  window.monsoonOffline.flush = flush;
  addEventListener("online", flush);

  var s = state();
  if (s && s.state === "saving") save(s.kind, s.bytes || 0);
  else if (s && s.state === "done") { showSaved(); spare(); }
  flush();
})();
