// Monsoon upload hashing worker: the SHA-256 of a whole File, read in slices so that a master
// of hundreds of gigabytes is never held in memory (crypto.subtle.digest takes one buffer).
// Message in: { file, sha256: <URL of js-sha256> }; messages out: { done, total } as it goes,
// then { digest: <hex> }, or { error }. Used by upload.js.
/* global sha256, importScripts, FileReaderSync */
self.onmessage = function (event) {
  "use strict";
  var file = event.data.file;
  try {
    importScripts(event.data.sha256);
    var SLICE = 8 * 1024 * 1024;
    var hasher = sha256.create();
    var reader = new FileReaderSync();
    var last = 0;
    for (var at = 0; at < file.size; at += SLICE) {
      hasher.update(reader.readAsArrayBuffer(file.slice(at, Math.min(at + SLICE, file.size))));
      var now = Date.now();
      if (now - last > 250) {
        last = now;
        self.postMessage({ done: Math.min(at + SLICE, file.size), total: file.size });
      }
    }
    self.postMessage({ digest: hasher.hex() });
  } catch (e) {
    self.postMessage({ error: String((e && e.message) || e) });
  }
};
