// Monsoon player: the browser's own HLS where it has one, hls.js where it is needed.
//
// Two engines play the same multivariant playlist. The browser's native HLS (Safari, Chromium,
// Android) needs no script, so a first visit on a 2G link shows a picture without waiting for
// the 155 kB of hls.js; hls.js (Media Source Extensions) gives the controls native HLS lacks:
// a chosen rung, the data saver's cap, audio only, subtitle and audio-language choices. The
// player starts natively unless hls.js is already in the browser's cache (it remembers having
// loaded it) or the browser has no native HLS, and upgrades to hls.js, at the same position,
// the moment the viewer asks for something only hls.js does (docs/ARCHITECTURE.md, "The
// player").
//
// One codec family at a time: hls.js gets the AV1 variants where this browser's Media Source
// Extensions decode them, the H.264 ones elsewhere (its playlist loader filters the
// multivariant playlist before hls.js parses it); native HLS plays H.264 (its floor is
// H.264's). Heartbeats name the codec.
//
// Weak links first: it starts on the lowest rung and climbs, can be capped by the data-saver
// switch (remembered; on by default when the browser asks to save data), resumes where the
// viewer left, and recovers from network and media errors. It reports to the audience API exactly as the wire contract says: a session minted
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
  // The hls.js URL (fingerprinted) this browser has loaded, so has in its cache.
  var HLSJS_KEY = "monsoon.hlsjs";
  var connection = navigator.connection || {};
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
  // A film saved for offline viewing (web/src/offline.js): its state, and whether this viewing
  // runs on the spare session minted online, its counters kept for when the connection returns.
  var OFFLINE_KEY = "monsoon.offline." + config.film;
  var offline = {
    state: function () { try { return JSON.parse(store.get(OFFLINE_KEY)) || null; } catch (e) { return null; } },
    setState: function (s) { store.set(OFFLINE_KEY, JSON.stringify(s)); },
  };
  var savedCopy = offline.state();
  var onSpare = false;

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
    if (l) return { height: l.height || 0, kbps: Math.round((l.bitrate || 0) / 1000), codec: family(l.videoCodec) };
    // Native HLS: the rung is the variant whose height the picture has. On the floor alone it
    // plays H.264 (the `blob:` playlist names its floor); given the whole playlist (Safari), the
    // browser picks, so no codec is said.
    var v = variants.find(function (x) { return x.height === video.videoHeight; });
    return {
      height: video.videoHeight || 0, kbps: v ? Math.round(v.bitrate / 1000) : 0,
      codec: engine === "native" && nativeFloor ? "h264" : "",
    };
  }
  // `f` once the first frame is shown, or at once if the viewer has not pressed play within
  // 3 s (autoplay refused: nothing to wait for).
  function afterFirstFrame(f) {
    if (m.started) { f(); return; }
    var done = false, once = function () { if (!done) { done = true; f(); } };
    video.addEventListener("playing", once, { once: true });
    setTimeout(function () { if (t0 === null || video.paused) once(); }, 3000);
  }
  // The offline section's script (web/src/offline.js) is not needed for the first frame.
  afterFirstFrame(function () {
    if (!config.offline_js) return;
    var script = document.createElement("script");
    script.src = config.offline_js;
    document.head.appendChild(script);
  });
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
      codec: l.codec || undefined,
      network: network(),
    });
  }
  // The link as the browser estimates it (Network Information `effectiveType`): one of the
  // four names the server takes, else nothing (Safari and Firefox have no such API).
  function network() {
    var c = navigator.connection;
    var t = c && c.effectiveType;
    return ["slow-2g", "2g", "3g", "4g"].indexOf(t) >= 0 ? t : undefined;
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
  function keepPending(finalState) {
    var s = offline.state();
    if (!s) return;
    var body = JSON.parse(beatBody(finalState));
    var counters = {};
    Object.keys(body).forEach(function (k) {
      if (["token", "proof", "seq", "state"].indexOf(k) < 0) counters[k] = body[k];
    });
    s.pending = { session_id: session.session_id, token: session.token, proof: session.proof,
      counters: counters, state: body.state };
    offline.setState(s);
  }
  function beatUrl() { return "/api/v1/sessions/" + encodeURIComponent(session.session_id) + "/heartbeat"; }
  function beat() {
    // Until the session's proof of work is found there is nothing the server would count:
    // the counters are cumulative, so the first beat after it carries everything.
    if (!session || !session.proof) return;
    if (onSpare) { keepPending(); return; }
    // text/plain: a "simple" request, no CORS preflight; the server parses the JSON anyway.
    fetch(beatUrl(), { method: "POST", body: beatBody(), keepalive: true, headers: { "Content-Type": "text/plain" } })
      .catch(function () { /* the next beat carries the same cumulative counters */ });
  }
  function finalBeat() {
    if (!session || !session.proof || m.sent_final) return;
    if (onSpare) { keepPending(m.state === "ended" || m.state === "error" ? m.state : "paused"); return; }
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
    // The proof's worker and script wait for the first frame: on a slow link their bytes
    // would delay it, and no beat goes out before it anyway.
    afterFirstFrame(function () {
      var proving = performance.now();
      prove(s, function (proof) {
        s.proof = proof;
        s.proof_ms = Math.round(performance.now() - proving); // for the browser test's report
        // A film already playing sends its first beat now rather than an interval later.
        if (m.started) beat();
      });
    });
    beatTimer = setInterval(beat, 1000 * (s.heartbeat_interval_s || 10));
  }).catch(function () {
    // No connection: a saved film plays on its spare session (offline.js), counted later.
    var s = offline.state();
    if (!s || !s.spare) return; // playback goes on without audience figures
    session = s.spare;
    onSpare = true;
    delete s.spare;
    offline.setState(s);
    window.monsoonPlayer.session = session;
    beatTimer = setInterval(beat, 5000);
  });
  addEventListener("pagehide", function () { savePosition(); finalBeat(); });

  // ---- Playback ------------------------------------------------------------------------
  var saved = parseFloat(store.get(POS_KEY) || "0");
  var resumeAt = saved > 5 && saved < (config.duration_s || Infinity) - 10 ? saved : 0;
  var hls = null;
  var engine = null; // "hls.js" or "native"
  var mediaErrors = 0;
  var src = video.dataset.hls;
  var hasNative = video.canPlayType("application/vnd.apple.mpegurl") !== "";
  var hasMse = !!(window.MediaSource || window.ManagedMediaSource);
  // The variants and renditions of the multivariant playlist (RFC 8216 §4.3.4), for the menus
  // and the heartbeat's bitrate while native HLS plays.
  var variants = [], audios = [];
  // A 2G link (Network Information API, `effectiveType`): hls.js keeps the floor until two
  // fragments have measured a throughput that carries the next rung; native HLS starts on the
  // floor anyway (the first variant) and climbs only as fast as the link.
  var floorUntilProven = /(^|-)2g$/.test(connection.effectiveType || "");

  function savePosition() {
    if (video.currentTime > 0) store.set(POS_KEY, video.ended ? "0" : String(video.currentTime));
  }
  setInterval(savePosition, 5000);

  var saverOn = store.get(SAVER_KEY) === null
    ? !!(config.save_data || connection.saveData) : store.get(SAVER_KEY) === "1";
  function saverCap(h) {
    if (!saverOn) return -1;
    var cap = 0;
    h.levels.forEach(function (l, i) { if (l.height && l.height <= SAVER_MAX_HEIGHT) cap = i; });
    return cap;
  }

  // Capping to the player's size is hls.js's own cap; it would overwrite ours, so the data
  // saver turns it off while on.
  function applySaver(h) {
    var cap = floorUntilProven ? 0 : saverCap(h);
    h.capLevelToPlayerSize = cap < 0;
    h.autoLevelCapping = cap;
    if (cap >= 0 && h.currentLevel > cap) h.currentLevel = cap;
  }

  // The video codec family of a variant from its CODECS (RFC 8216 §4.3.4.2, RFC 6381):
  // `av01…` (the AV1 ISO-BMFF binding's codecs parameter) is AV1, `avc1…`/`avc3…` H.264.
  function family(codecs) {
    var list = (codecs || "").split(",").map(function (c) { return c.trim(); });
    if (list.some(function (c) { return /^av01\./.test(c); })) return "av1";
    if (list.some(function (c) { return /^avc[13]\./.test(c); })) return "h264";
    return "";
  }
  // The family hls.js plays. hls.js does not switch codec families mid-stream (nor may a
  // player be asked to: Apple's HLS authoring specification, 1.23), so one is chosen before
  // it sees the playlist: AV1 where this browser's Media Source Extensions decode every AV1
  // variant's video and audio (W3C MSE `isTypeSupported`), H.264 everywhere else.
  function chooseFamily(text) {
    var ms = window.ManagedMediaSource || window.MediaSource;
    var av1 = [];
    text.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf("#EXT-X-STREAM-INF:") !== 0) return;
      var codecs = attrs(line.slice(18)).CODECS || "";
      if (family(codecs) === "av1") av1.push(codecs);
    });
    var decodes = function (codecs) {
      return codecs.split(",").every(function (c) {
        c = c.trim();
        var kind = /^(mp4a|opus|ac-3|ec-3|flac)/.test(c) ? "audio" : "video";
        try { return ms.isTypeSupported(kind + '/mp4; codecs="' + c + '"'); } catch (e) { return false; }
      });
    };
    return ms && av1.length && av1.every(decodes) ? "av1" : "h264";
  }
  // The multivariant playlist with the variants of family `keep` alone (and the audio groups
  // and I-frame playlists they use); a playlist without H.264 and AV1 variants is unchanged.
  function onlyFamily(text, keep) {
    var lines = text.split(/\r?\n/), groups = {}, any = false;
    lines.forEach(function (line) {
      if (line.indexOf("#EXT-X-STREAM-INF:") !== 0) return;
      var a = attrs(line.slice(18));
      if (family(a.CODECS) === keep) { any = true; if (a.AUDIO) groups[a.AUDIO] = true; }
    });
    if (!any) return text;
    var out = [];
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (line.indexOf("#EXT-X-STREAM-INF:") === 0) {
        var f = family(attrs(line.slice(18)).CODECS);
        if (!f || f === keep) out.push(line, lines[i + 1]);
        i += 1;
      } else if (line.indexOf("#EXT-X-I-FRAME-STREAM-INF:") === 0) {
        var fi = family(attrs(line.slice(26)).CODECS);
        if (!fi || fi === keep) out.push(line);
      } else if (line.indexOf("#EXT-X-MEDIA:") === 0) {
        var m = attrs(line.slice(13));
        if (m.TYPE !== "AUDIO" || groups[m["GROUP-ID"]]) out.push(line);
      } else {
        out.push(line);
      }
    }
    return out.join("\n");
  }
  // hls.js's playlist loader (its `pLoader`), filtering the multivariant playlist to one
  // family as it arrives (media playlists pass untouched: they have no variants). A
  // constructor returning the default loader, with `load` wrapped.
  function familyLoader(config) {
    var loader = new window.Hls.DefaultConfig.loader(config), load = loader.load.bind(loader);
    loader.load = function (context, loaderConfig, callbacks) {
      if (context.type !== "manifest") { load(context, loaderConfig, callbacks); return; }
      load(context, loaderConfig, Object.assign({}, callbacks, {
        onSuccess: function (response, stats, ctx, details) {
          if (typeof response.data === "string" && response.data.indexOf("#EXT-X-STREAM-INF:") >= 0) {
            response.data = onlyFamily(response.data, chooseFamily(response.data));
          }
          callbacks.onSuccess(response, stats, ctx, details);
        },
      }));
    };
    return loader;
  }

  // Native HLS keeps to H.264 (the browsers' own HLS and AV1 are not a safe pair): `variants`
  // are the H.264 ones, and its floor is H.264's.
  function parseMaster(text) {
    var lines = text.split(/\r?\n/), all = [];
    lines.forEach(function (line, i) {
      if (line.indexOf("#EXT-X-STREAM-INF:") === 0) {
        var a = attrs(line.slice(18)), res = /x(\d+)$/.exec(a.RESOLUTION || "");
        if (res) all.push({ height: +res[1], bitrate: +a.BANDWIDTH || 0, audio: a.AUDIO, uri: lines[i + 1], family: family(a.CODECS) });
      } else if (line.indexOf("#EXT-X-MEDIA:") === 0) {
        var m = attrs(line.slice(13));
        if (m.TYPE === "AUDIO") audios.push({ lang: m.LANGUAGE || "", name: m.NAME || "", group: m["GROUP-ID"], uri: m.URI });
      }
    });
    var h264 = all.filter(function (v) { return v.family === "h264"; });
    variants = h264.length ? h264 : all.filter(function (v) { return v.family !== "av1"; });
    variants.sort(function (a, b) { return a.bitrate - b.bitrate; });
    var used = {};
    variants.forEach(function (v) { used[v.audio] = true; });
    if (variants.length) audios = audios.filter(function (a) { return used[a.group]; });
  }
  function attrs(list) {
    var out = {};
    list.replace(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g, function (_m, k, v) { out[k] = v.replace(/^"|"$/g, ""); });
    return out;
  }

  // The start, fetched at once: the floor rung's and its sound's playlists and init segments,
  // side by side, while the engine (or its script) is still on its way; their first segments
  // the page's head fetched already (crates/server/templates/start.js). Both engines start on
  // the floor and find these in the HTTP cache, so a slow link carries the first picture's
  // bytes in parallel rather than one round trip after another.
  var text = function (r) { return r.ok ? r.text() : Promise.reject(r.status); };
  // The multivariant playlist (preloaded by the page), read once for the menus and the start.
  var masterText = fetch(src).then(text);
  var master = masterText.then(parseMaster);
  master.catch(function () {});
  // The floor's playlists, fetched once: [{ url, text }] for the rung and its sound.
  var floorPlaylists = master.then(function () {
    var floor = variants[0];
    if (!floor) return [];
    var sound = audios.find(function (a) { return a.group === floor.audio && a.uri; });
    return Promise.all([floor.uri, sound && sound.uri].filter(Boolean).map(function (uri) {
      var url = new URL(uri, new URL(src, location.href));
      return fetch(url).then(text).then(function (body) {
        var map = /#EXT-X-MAP:URI="([^"]+)"/.exec(body);
        if (map) fetch(new URL(map[1], url)).catch(function () {});
        return { uri: uri, url: url, text: body };
      });
    }));
  });
  floorPlaylists.catch(function () {});

  function startHls(url, position) {
    engine = "hls.js";
    var h = new window.Hls({
      pLoader: familyLoader,
      startLevel: 0, // the lowest rung first: a picture quickly on any link
      capLevelToPlayerSize: true,
      maxBufferLength: 30,
      startPosition: position > 0 ? position : -1,
      startFragPrefetch: true,
      abrEwmaDefaultEstimate: floorUntilProven ? 50000 : 500000,
    });
    var measured = 0;
    h.on(window.Hls.Events.FRAG_LOADED, function (_e, data) {
      m.bytes += (data.frag.stats && data.frag.stats.total) || 0;
      var next = h.levels[1];
      if (floorUntilProven && data.frag.type === "main" && ++measured >= 2 && next
        && h.bandwidthEstimate * h.config.abrBandWidthUpFactor > next.bitrate) {
        floorUntilProven = false;
        applySaver(h);
      }
    });
    h.on(window.Hls.Events.MANIFEST_PARSED, function () {
      buildMenus();
      applySaver(h);
    });
    h.on(window.Hls.Events.LEVEL_SWITCHED, showAuto);
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

  // Native HLS; `floorOnly`, from a multivariant playlist naming the floor rung alone. Chromium's
  // own HLS climbs to the top rung after the first segment whatever the link (measured: on
  // 300 kbit/s it fetched a 432p segment for 15 s while the picture stood still), so on a slow
  // link it gets nothing else to climb to; the quality menu still offers every rung, through
  // hls.js. Safari cannot play a playlist from a `blob:` URL: there, the whole one (its own
  // ABR is sound).
  var nativeFloor = false; // native HLS plays the H.264 floor alone, from a `blob:` playlist
  function startNative(position, floorOnly) {
    engine = "native";
    nativeFloor = false;
    if (position) video.addEventListener("loadedmetadata", function () { video.currentTime = position; }, { once: true });
    master.then(buildMenus, function () {});
    if (!floorOnly) { video.src = src; return; }
    Promise.all([masterText, floorPlaylists]).then(function (both) {
      video.addEventListener("error", function () { nativeFloor = false; video.src = src; play_(); }, { once: true });
      video.src = floorPlaylist(both[0], both[1]);
      nativeFloor = video.src.indexOf("blob:") === 0;
      play_();
    }, function () { video.src = src; play_(); });
  }
  // The floor alone, as `blob:` playlists: the multivariant naming the floor and its sound,
  // each pointing at its media playlist, already fetched (so the engine makes no round trip
  // for a playlist before its first segment), with every other URI made absolute.
  function floorPlaylist(text, playlists) {
    var base = new URL(src, location.href), floor = variants[0];
    if (!floor) return src;
    var blob = function (body) {
      return URL.createObjectURL(new Blob([body], { type: "application/vnd.apple.mpegurl" }));
    };
    var local = {};
    playlists.forEach(function (p) {
      local[p.uri] = blob(p.text.split(/\r?\n/).map(function (line) {
        if (line && line[0] !== "#") return String(new URL(line, p.url));
        return line.replace(/URI="([^"]+)"/, function (_m, uri) { return 'URI="' + new URL(uri, p.url) + '"'; });
      }).join("\n"));
    });
    var absolute = function (uri) { return local[uri] || String(new URL(uri, base)); };
    var lines = text.split(/\r?\n/), out = [];
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (line.indexOf("#EXT-X-STREAM-INF:") === 0) {
        if (lines[i + 1] === floor.uri) out.push(line, absolute(lines[i + 1]));
        i += 1;
      } else if (line.indexOf("#EXT-X-I-FRAME-STREAM-INF:") !== 0) {
        out.push(line.replace(/URI="([^"]+)"/, function (_m, uri) { return 'URI="' + absolute(uri) + '"'; }));
      }
    }
    return blob(out.join("\n"));
  }

  // hls.js, once per page: its script is added only when an engine needs it.
  var hlsWaiting = null;
  function withHlsJs(then) {
    if (window.Hls) { then(); return; }
    if (hlsWaiting) { hlsWaiting.push(then); return; }
    hlsWaiting = [then];
    var script = document.createElement("script");
    script.src = config.hls_js;
    script.onload = function () {
      store.set(HLSJS_KEY, config.hls_js);
      hlsWaiting.forEach(function (f) { f(); });
    };
    script.onerror = function () { hlsWaiting = null; say(S.network_error); };
    document.head.appendChild(script);
  }

  // Native HLS → hls.js at the same position, then `then()`; at once if hls.js already plays.
  function upgrade(then) {
    if (engine === "hls.js") { then(); return; }
    if (!hasMse) return; // native only (an iPhone without Managed Media Source): Auto it is
    withHlsJs(function () {
      if (engine === "hls.js") { then(); return; }
      var at = video.currentTime || resumeAt, playing = !video.paused;
      video.removeAttribute("src");
      video.load();
      hls = startHls(src, at);
      hls.once(window.Hls.Events.MANIFEST_PARSED, then);
      if (playing) video.play().catch(function () {});
    });
  }

  function fail() {
    m.fatal = true;
    setState("error");
    say(S.playback_failed);
    if (hls) hls.destroy();
    finalBeat();
  }

  // Autoplay; where the browser refuses it, the poster shows until the viewer presses play.
  // (The poster is not fetched otherwise: on a 2G link its bytes would delay the first frame.)
  function play_() {
    video.play().catch(function () { if (video.dataset.poster) video.poster = video.dataset.poster; });
  }
  // The engine (docs/ARCHITECTURE.md, "The player"): hls.js when it is in the cache already,
  // for a saved film (the service worker answers its requests), and on a fast link (its 155 kB
  // cost a second or less); native HLS, on the floor, on a slow link (Network Information API:
  // `effectiveType` 3g or slower, i.e. under ~700 kbit/s or over ~270 ms RTT), where hls.js
  // would hold the first frame back by seconds; native HLS, whole, where there is no Media Source at all.
  // Without either, the browser's own controls stay and say what they can.
  function controlsOn() { video.removeAttribute("controls"); $("controls").hidden = false; }
  var savedDone = !!(savedCopy && savedCopy.state === "done");
  var cachedHlsJs = store.get(HLSJS_KEY) === config.hls_js;
  var slowLink = /(^|-)[23]g$/.test(connection.effectiveType || "");
  if (hasNative && (!hasMse || (slowLink && !cachedHlsJs && !savedDone))) {
    controlsOn();
    startNative(resumeAt, hasMse);
    if (!hasMse) play_();
  } else if (hasMse) {
    withHlsJs(function () {
      if (!window.Hls.isSupported()) { if (hasNative) { controlsOn(); startNative(resumeAt, false); play_(); } return; }
      controlsOn();
      hls = startHls(src, resumeAt);
      play_();
    });
  }
  if (resumeAt) say(S.resumed + " " + clock(resumeAt));
  window.monsoonPlayer = {
    video: video, counters: m, session: null,
    get hls() { return hls; }, get engine() { return engine; },
    get floorHeld() { return floorUntilProven; },
    get codec() { return level().codec; }, // what the heartbeat says: "h264", "av1" or ""
  };

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

  // ---- Controls: one row over the picture; the rest in one settings menu ----------------
  var play = $("c-play"), seek = $("c-seek"), time = $("c-time"), mute = $("c-mute");
  var quality = $("c-quality"), subs = $("c-subs"), saver = $("c-saver"), full = $("c-full");
  var settings = $("c-settings"), menu = $("c-menu"), speed = $("c-speed"), audio = $("c-audio");
  var tapHint = $("c-tap");

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
  seek.addEventListener("input", function () {
    var d = video.duration || config.duration_s || 0;
    video.currentTime = d * seek.value / 1000;
  });
  mute.addEventListener("click", function () {
    video.muted = !video.muted;
    mute.setAttribute("aria-label", video.muted ? S.unmute : S.mute);
    mute.classList.toggle("off", video.muted);
  });
  function fullscreen(on) {
    if (!on) { if (document.fullscreenElement) document.exitFullscreen().catch(function () {}); return; }
    if (document.fullscreenElement || !box.requestFullscreen) return;
    box.requestFullscreen().then(function () {
      // A phone turns the picture sideways in full screen, where the browser allows it.
      if (touch.matches && screen.orientation && screen.orientation.lock) {
        screen.orientation.lock("landscape").catch(function () {});
      }
    }).catch(function () {});
  }
  full.addEventListener("click", function () { fullscreen(!document.fullscreenElement); });

  // Shown while paused, while the menu is open, while focus is inside, and for 3 s after any
  // movement or tap; hidden otherwise, so the picture is whole.
  var touch = window.matchMedia("(hover: none), (pointer: coarse)");
  var idleTimer = null;
  function showControls() {
    box.classList.remove("idle");
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function () {
      if (!video.paused && menu.hidden && !box.contains(document.activeElement)) box.classList.add("idle");
    }, 3000);
  }
  box.addEventListener("pointermove", function (e) { if (e.pointerType === "mouse") showControls(); });
  box.addEventListener("focusin", showControls);
  video.addEventListener("play", showControls);
  video.addEventListener("pause", showControls);

  // A mouse click plays or pauses; a tap shows or hides the controls; a double tap on the
  // left or right third seeks 10 s back or forward, as on every phone video app.
  var lastTap = 0, tapTimer = null;
  function seekBy(s, x) {
    video.currentTime = Math.max(0, Math.min((video.duration || Infinity) - 0.5, video.currentTime + s));
    tapHint.textContent = s > 0 ? "10 s \u00bb" : "\u00ab 10 s";
    tapHint.style.left = x < 0.5 ? "15%" : "";
    tapHint.style.right = x < 0.5 ? "" : "15%";
    tapHint.hidden = false;
    clearTimeout(tapHint.timer);
    tapHint.timer = setTimeout(function () { tapHint.hidden = true; }, 700);
  }
  video.addEventListener("click", function (e) {
    if (e.pointerType !== "touch") { toggle(); return; }
    var r = video.getBoundingClientRect(), x = (e.clientX - r.left) / r.width;
    var now = e.timeStamp;
    if (now - lastTap < 300 && (x < 1 / 3 || x > 2 / 3)) {
      clearTimeout(tapTimer);
      lastTap = 0;
      seekBy(x < 1 / 3 ? -10 : 10, x);
      showControls();
      return;
    }
    lastTap = now;
    clearTimeout(tapTimer);
    tapTimer = setTimeout(function () {
      if (box.classList.contains("idle")) showControls();
      else if (!video.paused) { clearTimeout(idleTimer); box.classList.add("idle"); }
    }, 300);
  });
  video.addEventListener("dblclick", function (e) {
    if (e.pointerType !== "touch" && !touch.matches) fullscreen(!document.fullscreenElement);
  });
  // A phone turned sideways while the film plays goes full screen; upright leaves it.
  if (screen.orientation) {
    screen.orientation.addEventListener("change", function () {
      if (!touch.matches) return;
      var landscape = screen.orientation.type.indexOf("landscape") === 0;
      if (landscape && !video.paused) fullscreen(true);
      else if (!landscape) fullscreen(false);
    });
  }

  // The settings menu: quality, data saver, subtitles, audio language, speed.
  function openMenu(open) {
    menu.hidden = !open;
    settings.setAttribute("aria-expanded", String(open));
    box.classList.toggle("menu-open", open);
    if (open) { showControls(); (menu.querySelector("select, input") || menu).focus(); }
  }
  settings.addEventListener("click", function () { openMenu(menu.hidden); });
  document.addEventListener("pointerdown", function (e) {
    if (!menu.hidden && !menu.contains(e.target) && !settings.contains(e.target)) openMenu(false);
  });

  // Languages by their names in the page's language ("Tiếng Việt", not "vi").
  var names = null;
  try { names = new Intl.DisplayNames([document.documentElement.lang || "vi"], { type: "language" }); } catch (e) { /* old browser: codes */ }
  function languageName(code) {
    try { return (names && code && names.of(code)) || code; } catch (e) { return code; }
  }
  if (subs) {
    Array.prototype.forEach.call(subs.options, function (o) { if (o.value) o.textContent = languageName(o.value); });
  }

  // Quality: Auto (saying which rung plays), each rung, audio only. Values are heights, which
  // mean the same rung to both engines.
  var audioOnly = false;
  function rungs() {
    return hls ? hls.levels.filter(function (l) { return l.height; })
      .map(function (l) { return { height: l.height, bitrate: l.bitrate }; }) : variants;
  }
  function buildMenus() {
    if (quality.dataset.built || !rungs().length) return;
    quality.dataset.built = "1";
    rungs().forEach(function (l) {
      var o = document.createElement("option");
      o.value = "h" + l.height;
      o.textContent = l.height + "p · " + Math.round(l.bitrate / 1000) + " kbit/s";
      quality.appendChild(o);
    });
    if (audios.length || (hls && audioOnlyUrl())) {
      var o = document.createElement("option");
      o.value = "audio";
      o.textContent = S.audio_only;
      quality.appendChild(o);
    }
    // Audio tracks, when the film has more than one: by the name the manifest gives each
    // (`NAME`: "English", "Tiếng Việt (mô tả)"), so two tracks in one language (a dub and an
    // audio-described mix) are two choices; a track without a name goes by its language.
    var tracks = [];
    (hls ? hls.allAudioTracks || hls.audioTracks || [] : audios).forEach(function (t) {
      var name = t.name || (t.lang ? languageName(t.lang) : "");
      if (name && tracks.indexOf(name) < 0) tracks.push(name);
    });
    if (tracks.length > 1 && !audio.options.length) {
      tracks.forEach(function (name) {
        var o = document.createElement("option");
        o.value = name;
        o.textContent = name;
        audio.appendChild(o);
      });
      $("c-audio-row").hidden = false;
    }
    showAuto();
  }
  function showAuto() {
    var h = video.videoHeight;
    if (hls && hls.currentLevel >= 0 && hls.levels[hls.currentLevel]) h = hls.levels[hls.currentLevel].height;
    quality.options[0].textContent = S.auto + (h && !audioOnly ? " (" + h + "p)" : "");
  }
  video.addEventListener("resize", function () {
    showAuto();
    // Native HLS cannot be capped: past the data saver's height, hls.js takes over.
    if (engine === "native" && saverOn && video.videoHeight > SAVER_MAX_HEIGHT) upgrade(function () { applySaver(hls); });
  });
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
    if (v === "auto" && engine === "native") return;
    upgrade(function () {
      if (v === "audio") {
        audioOnly = true;
        restart(audioOnlyUrl());
        return;
      }
      if (audioOnly) {
        audioOnly = false;
        restart(src);
        hls.once(window.Hls.Events.MANIFEST_PARSED, function () { quality.value = v; apply(v); });
        return;
      }
      apply(v);
    });
  });
  function apply(v) {
    // A manual rung switches at once (the buffer ahead is replaced); Auto lets ABR decide.
    var height = Number(v.slice(1));
    hls.currentLevel = v === "auto" ? -1 : hls.levels.findIndex(function (l) { return l.height === height; });
    showAuto();
  }

  saver.checked = saverOn;
  saver.addEventListener("change", function () {
    saverOn = saver.checked;
    store.set(SAVER_KEY, saverOn ? "1" : "0");
    if (hls) applySaver(hls);
    else if (saverOn && video.videoHeight > SAVER_MAX_HEIGHT) upgrade(function () { applySaver(hls); });
  });

  if (subs) {
    // Subtitles come from the manifest through hls.js, one track per language.
    subs.addEventListener("change", function () {
      var lang = subs.value;
      if (!lang && engine === "native") return;
      upgrade(function () {
        hls.subtitleTrack = hls.subtitleTracks.findIndex(function (t) { return t.lang === lang; });
      });
    });
  }
  audio.addEventListener("change", function () {
    var name = audio.value;
    upgrade(function () {
      hls.audioTrack = hls.audioTracks.findIndex(function (t) {
        return (t.name || (t.lang ? languageName(t.lang) : "")) === name;
      });
    });
  });
  speed.addEventListener("change", function () { video.playbackRate = Number(speed.value); });
  video.addEventListener("ratechange", function () { speed.value = String(video.playbackRate); });
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

  // Keyboard: Space/K play-pause, arrows ±10 s, M mute, F full screen (not while in a menu);
  // Escape closes the settings menu.
  document.addEventListener("keydown", function (e) {
    var tag = e.target && e.target.tagName;
    if (e.key === "Escape" && !menu.hidden) { openMenu(false); settings.focus(); return; }
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
