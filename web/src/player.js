// Monsoon player: hls.js where Media Source Extensions exist, native HLS elsewhere (Safari).
//
// Weak links first: it starts on the lowest rung and climbs, can be capped by the data-saver
// switch (remembered), resumes where the viewer left, and recovers from network and media
// errors. It reports to the audience API exactly as the wire contract says: a session minted
// at start, a heartbeat every `heartbeat_interval_s` with cumulative counters, and the last
// one with navigator.sendBeacon when the page goes away.
(function () {
  "use strict";
  var video = document.getElementById("player");
  var box = document.getElementById("player-box");
  if (!video || !box) return;
  var config = JSON.parse(document.getElementById("player-config").textContent);
  var S = config.strings;
  var $ = function (id) { return document.getElementById(id); };
  var store = {
    get: function (k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } },
  };
  var POS_KEY = "monsoon.pos." + config.film;
  var SAVER_KEY = "monsoon.dataSaver";
  // The data saver caps pictures at this height: enough for a phone, a fraction of the bytes.
  var SAVER_MAX_HEIGHT = 360;
  var status = $("c-status");
  var say = function (text) { status.textContent = text; };

  var clock = function (s) {
    s = Math.max(0, Math.floor(s || 0));
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  };

  // ---- Audience: session, cumulative counters, heartbeats -------------------------------
  var viewerId = store.get("monsoon.viewer");
  if (!viewerId) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    viewerId = Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
    store.set("monsoon.viewer", viewerId);
  }
  var t0 = null; // play intent: the first `play` event (autoplay or the viewer's press)
  var m = {
    state: "startup", seq: 0, play_ms: 0, rebuffer_ms: 0, rebuffer_count: 0, startup_ms: 0,
    seek_ms: 0, bytes: 0, fatal: false, started: false,
    sent_final: false, // an ended or error beat went out: the session is closed
  };
  var since = performance.now(); // when the current state began, for the time counters
  var session = null;
  var beatTimer = null;

  function accrue() {
    var now = performance.now(), dt = now - since;
    since = now;
    if (m.state === "playing") m.play_ms += dt;
    else if (m.state === "rebuffering") m.rebuffer_ms += dt;
    else if (m.state === "seeking") m.seek_ms += dt;
  }
  function setState(next) {
    if (m.state === "ended" || m.state === "error") return;
    accrue();
    if (next === "rebuffering" && m.state !== "rebuffering") m.rebuffer_count += 1;
    m.state = next;
  }
  function level() {
    var l = hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel] : null;
    return l ? { height: l.height || 0, kbps: Math.round((l.bitrate || 0) / 1000) }
      : { height: video.videoHeight || 0, kbps: 0 };
  }
  function beatBody(finalState) {
    accrue();
    var l = level();
    var q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    m.seq += 1;
    return JSON.stringify({
      token: session.token, proof: session.proof, seq: m.seq, state: finalState || m.state,
      play_ms: Math.floor(m.play_ms), rebuffer_ms: Math.floor(m.rebuffer_ms),
      rebuffer_count: m.rebuffer_count, startup_ms: Math.floor(m.startup_ms),
      seek_ms: Math.floor(m.seek_ms), playhead_ms: Math.floor(video.currentTime * 1000),
      height: l.height, bitrate_kbps: l.kbps, bytes: m.bytes,
      dropped_frames: q ? q.droppedVideoFrames : 0, fatal_error: m.fatal,
    });
  }
  // The session's proof of work (docs/SECURITY.md), found in a worker so playback never
  // waits for it; `done` gets the proof.
  function prove(s, done) {
    if (!s.proof_bits) { done("0"); return; }
    try {
      var worker = new Worker(config.proof_worker);
      worker.onmessage = function (e) { worker.terminate(); done(e.data); };
      worker.postMessage({ sha256: config.sha256_js, session: s.session_id, bits: s.proof_bits });
    } catch (e) { /* no workers: the session goes uncounted, playback goes on */ }
  }
  function beatUrl() { return "/api/v1/sessions/" + encodeURIComponent(session.session_id) + "/heartbeat"; }
  function beat() {
    // Until the session's proof of work is found there is nothing the server would count:
    // the counters are cumulative, so the first beat after it carries everything.
    if (!session || !session.proof) return;
    // text/plain: a "simple" request, no CORS preflight; the server parses the JSON anyway.
    fetch(beatUrl(), { method: "POST", body: beatBody(), keepalive: true, headers: { "Content-Type": "text/plain" } })
      .catch(function () { /* the next beat carries the same cumulative counters */ });
  }
  function finalBeat() {
    if (!session || !session.proof || m.sent_final) return;
    // The session ends with the page: "ended" if the film ended, "error" after a fatal error,
    // else "paused" (the viewer left; they stop counting as watching at once).
    var state = m.state === "ended" || m.state === "error" ? m.state : "paused";
    var body = beatBody(state);
    m.sent_final = state === "ended" || state === "error";
    var blob = new Blob([body], { type: "text/plain" });
    if (!(navigator.sendBeacon && navigator.sendBeacon(beatUrl(), blob))) {
      fetch(beatUrl(), { method: "POST", body: body, keepalive: true }).catch(function () {});
    }
  }
  fetch("/api/v1/films/" + encodeURIComponent(config.film) + "/sessions", {
    method: "POST", body: JSON.stringify({ viewer_id: viewerId }),
    headers: { "Content-Type": "application/json" },
  }).then(function (r) { return r.ok ? r.json() : null; }).then(function (s) {
    if (!s) return;
    session = s;
    window.monsoonPlayer.session = s;
    var proving = performance.now();
    prove(s, function (proof) {
      s.proof = proof;
      s.proof_ms = Math.round(performance.now() - proving); // for the browser test's report
      // A film already playing sends its first beat now rather than an interval later.
      if (m.started) beat();
    });
    beatTimer = setInterval(beat, 1000 * (s.heartbeat_interval_s || 10));
  }).catch(function () { /* playback goes on without audience figures */ });
  addEventListener("pagehide", function () { savePosition(); finalBeat(); });

  // ---- Playback ------------------------------------------------------------------------
  var saved = parseFloat(store.get(POS_KEY) || "0");
  var resumeAt = saved > 5 && saved < (config.duration_s || Infinity) - 10 ? saved : 0;
  var hls = null;
  var mediaErrors = 0;
  var src = video.dataset.hls;

  function savePosition() {
    if (video.currentTime > 0) store.set(POS_KEY, video.ended ? "0" : String(video.currentTime));
  }
  setInterval(savePosition, 5000);

  function saverCap(h) {
    if (!h || store.get(SAVER_KEY) !== "1") return -1;
    var cap = 0;
    h.levels.forEach(function (l, i) { if (l.height && l.height <= SAVER_MAX_HEIGHT) cap = i; });
    return cap;
  }

  // Capping to the player's size is hls.js's own cap; it would overwrite ours, so the data
  // saver turns it off while on.
  function applySaver(h) {
    var cap = saverCap(h);
    h.capLevelToPlayerSize = cap < 0;
    h.autoLevelCapping = cap;
    if (cap >= 0 && h.currentLevel > cap) h.currentLevel = cap;
  }

  function startHls(url, position) {
    var h = new window.Hls({
      startLevel: 0, // the lowest rung first: a picture quickly on any link
      capLevelToPlayerSize: true,
      maxBufferLength: 30,
      startPosition: position > 0 ? position : -1,
      startFragPrefetch: true,
    });
    h.on(window.Hls.Events.FRAG_LOADED, function (_e, data) {
      m.bytes += (data.frag.stats && data.frag.stats.total) || 0;
    });
    h.on(window.Hls.Events.MANIFEST_PARSED, function () {
      buildQualityMenu();
      applySaver(h);
    });
    h.on(window.Hls.Events.ERROR, function (_event, data) {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
        say(S.network_error);
        setTimeout(function () { h.startLoad(); }, 1000);
      } else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR && mediaErrors < 3) {
        mediaErrors += 1;
        if (mediaErrors === 2) h.swapAudioCodec();
        h.recoverMediaError();
      } else {
        fail();
      }
    });
    h.loadSource(url);
    h.attachMedia(video);
    return h;
  }

  function fail() {
    m.fatal = true;
    setState("error");
    say(S.playback_failed);
    if (hls) hls.destroy();
    finalBeat();
  }

  if (window.Hls && window.Hls.isSupported()) {
    video.removeAttribute("controls");
    $("controls").hidden = false;
    hls = startHls(src, resumeAt);
    video.play().catch(function () { /* autoplay refused: the viewer presses play */ });
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src; // Safari plays HLS itself, with its own controls
    if (resumeAt) video.addEventListener("loadedmetadata", function () { video.currentTime = resumeAt; }, { once: true });
  }
  if (resumeAt) say(S.resumed + " " + clock(resumeAt));
  window.monsoonPlayer = { video: video, counters: m, session: null, get hls() { return hls; } };

  // Player state from media events, for the heartbeat's `state` and time counters.
  video.addEventListener("play", function () { if (t0 === null) t0 = performance.now(); });
  video.addEventListener("playing", function () {
    if (!m.started) { m.started = true; m.startup_ms = performance.now() - (t0 === null ? since : t0); }
    setState("playing");
  });
  video.addEventListener("pause", function () { if (!video.ended && !video.seeking) setState("paused"); });
  video.addEventListener("waiting", function () { if (m.started && !video.seeking) setState("rebuffering"); });
  video.addEventListener("seeking", function () { if (m.started) setState("seeking"); });
  video.addEventListener("seeked", function () { if (m.started) setState(video.paused ? "paused" : "playing"); });
  video.addEventListener("ended", function () {
    setState("ended");
    clearInterval(beatTimer);
    store.set(POS_KEY, "0");
    finalBeat();
  });

  // ---- Controls --------------------------------------------------------------------------
  var play = $("c-play"), seek = $("c-seek"), time = $("c-time"), mute = $("c-mute");
  var quality = $("c-quality"), subs = $("c-subs"), saver = $("c-saver"), full = $("c-full");

  function toggle() { if (video.paused) video.play(); else video.pause(); }
  function sync() {
    var d = video.duration || config.duration_s || 0;
    play.innerHTML = video.paused ? "&#9654;" : "&#10074;&#10074;";
    play.setAttribute("aria-label", video.paused ? S.play : S.pause);
    if (!seek.matches(":active")) seek.value = d ? Math.round(1000 * video.currentTime / d) : 0;
    seek.setAttribute("aria-valuetext", clock(video.currentTime) + " / " + clock(d));
    time.textContent = clock(video.currentTime) + " / " + clock(d);
  }
  ["play", "pause", "timeupdate", "durationchange"].forEach(function (e) { video.addEventListener(e, sync); });
  play.addEventListener("click", toggle);
  video.addEventListener("click", toggle);
  seek.addEventListener("input", function () {
    var d = video.duration || config.duration_s || 0;
    video.currentTime = d * seek.value / 1000;
  });
  mute.addEventListener("click", function () {
    video.muted = !video.muted;
    mute.setAttribute("aria-label", video.muted ? S.unmute : S.mute);
    mute.classList.toggle("off", video.muted);
  });
  full.addEventListener("click", function () {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (box.requestFullscreen) box.requestFullscreen();
  });

  // Quality: Auto, each rung, audio only. Audio only plays the audio rendition's own playlist.
  var audioOnly = false;
  function buildQualityMenu() {
    if (!hls || quality.dataset.built) return;
    quality.dataset.built = "1";
    hls.levels.forEach(function (l, i) {
      var o = document.createElement("option");
      o.value = String(i);
      o.textContent = l.height + "p · " + Math.round(l.bitrate / 1000) + " kbit/s";
      quality.appendChild(o);
    });
    if (audioOnlyUrl()) {
      var o = document.createElement("option");
      o.value = "audio";
      o.textContent = S.audio_only;
      quality.appendChild(o);
    }
  }
  // The first (smallest) audio rendition, played on its own for "audio only".
  function audioOnlyUrl() {
    var tracks = hls.allAudioTracks || hls.audioTracks || [];
    return tracks.length ? tracks[0].url : null;
  }
  function restart(url) {
    var at = video.currentTime, wasPlaying = !video.paused;
    hls.destroy();
    quality.dataset.built = "";
    hls = startHls(url, at);
    if (wasPlaying) video.play().catch(function () {});
  }
  quality.addEventListener("change", function () {
    var v = quality.value;
    if (v === "audio") {
      audioOnly = true;
      restart(audioOnlyUrl());
      return;
    }
    if (audioOnly) {
      audioOnly = false;
      var keep = v;
      restart(src);
      hls.once(window.Hls.Events.MANIFEST_PARSED, function () { quality.value = keep; apply(keep); });
      return;
    }
    apply(v);
  });
  function apply(v) {
    // A manual rung switches at once (the buffer ahead is replaced); Auto lets ABR decide.
    hls.currentLevel = v === "auto" ? -1 : Number(v);
  }

  saver.checked = store.get(SAVER_KEY) === "1";
  saver.addEventListener("change", function () {
    store.set(SAVER_KEY, saver.checked ? "1" : "0");
    if (hls) applySaver(hls);
  });

  if (subs) {
    // Subtitles come from the manifest (hls.js, or Safari natively), one track per language.
    subs.addEventListener("change", function () {
      if (hls) {
        hls.subtitleTrack = hls.subtitleTracks.findIndex(function (t) { return t.lang === subs.value; });
        return;
      }
      Array.prototype.forEach.call(video.textTracks, function (t) {
        t.mode = t.language === subs.value ? "showing" : "disabled";
      });
    });
  }

  // Seek-bar previews from the thumbnail sprites (a WebVTT index of `sprite#xywh=` cues).
  var cues = null;
  var preview = $("c-preview");
  function loadCues() {
    if (cues || !video.dataset.thumbnails) return;
    cues = [];
    var base = video.dataset.thumbnails.replace(/[^/]*$/, "");
    fetch(video.dataset.thumbnails).then(function (r) { return r.text(); }).then(function (text) {
      var secs = function (t) { var p = t.split(":"); return +p[0] * 3600 + +p[1] * 60 + parseFloat(p[2]); };
      text.split(/\n\n+/).forEach(function (block) {
        var mt = block.match(/([\d:.]+) --> ([\d:.]+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/);
        if (mt) cues.push({ start: secs(mt[1]), end: secs(mt[2]), url: base + mt[3], x: +mt[4], y: +mt[5], w: +mt[6], h: +mt[7] });
      });
      if (!preview.hidden) showPreview(lastFraction);
    }).catch(function () {});
  }
  var lastFraction = 0;
  function showPreview(fraction) {
    lastFraction = fraction;
    var d = video.duration || config.duration_s || 0, at = d * fraction;
    var cue = cues && cues.find(function (c) { return at >= c.start && at < c.end; });
    var img = preview.firstElementChild;
    if (cue) {
      img.style.width = cue.w + "px";
      img.style.height = cue.h + "px";
      img.style.background = "url(" + cue.url + ") -" + cue.x + "px -" + cue.y + "px";
    }
    img.hidden = !cue;
    preview.lastElementChild.textContent = clock(at);
    preview.style.left = (fraction * 100) + "%";
    preview.hidden = false;
  }
  seek.addEventListener("pointerenter", loadCues);
  seek.addEventListener("focus", loadCues);
  seek.addEventListener("pointermove", function (e) {
    var r = seek.getBoundingClientRect();
    showPreview(Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)));
  });
  seek.addEventListener("pointerleave", function () { preview.hidden = true; });

  // Keyboard: Space/K play-pause, arrows ±10 s, M mute, F full screen (not while in a menu).
  document.addEventListener("keydown", function (e) {
    var tag = e.target && e.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" && e.target.type !== "range" || e.altKey || e.ctrlKey || e.metaKey) return;
    var k = e.key.toLowerCase();
    if (k === " " || k === "k") { if (tag === "BUTTON") return; toggle(); }
    else if (k === "arrowright" && tag !== "INPUT") video.currentTime += 10;
    else if (k === "arrowleft" && tag !== "INPUT") video.currentTime = Math.max(0, video.currentTime - 10);
    else if (k === "m") mute.click();
    else if (k === "f") full.click();
    else return;
    e.preventDefault();
  });
  sync();
})();
