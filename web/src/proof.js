// Monsoon proof-of-work worker. A session counts from its first heartbeat, which must carry a
// `proof`: a string such that SHA-256("<session id>:<proof>") starts with `bits` zero bits
// (docs/SECURITY.md). It takes a player a few seconds of background time, once per session,
// while the film loads and plays; a script that fakes a thousand sessions pays a thousand
// times. Message in: { sha256: <URL of js-sha256>, session, bits }; message out: the proof.
/* global sha256, importScripts */
self.onmessage = function (event) {
  "use strict";
  var job = event.data;
  importScripts(job.sha256);
  var zeroBits = function (bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      return bits + Math.clz32(bytes[i]) - 24;
    }
    return bits;
  };
  var prefix = job.session + ":";
  for (var n = 0; ; n++) {
    if (zeroBits(sha256.array(prefix + n)) >= job.bits) {
      self.postMessage(String(n));
      return;
    }
  }
};
