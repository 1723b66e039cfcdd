// Resumable upload of a master to /admin/api/uploads, for the operator's studio: the tus 1.0
// protocol through tus-js-client (its UMD build, served as the asset `tus.js`, defines
// `globalThis.tus`; the page loads it with a plain <script> before importing this module).
// docs/INGEST.md, "Uploading a master", says what the server checks.
//
// - Resumes: the upload's URL is kept in localStorage under the file's fingerprint (name, type,
//   size, last modified), so after a network cut tus-js-client retries from the server's
//   offset (HEAD), and after a page reload `startUpload` with the same file finds the upload
//   and carries on from the last byte the server has.
// - Chunks of CHUNK_BYTES: each PATCH is one request the server fsyncs before acknowledging;
//   a cut costs at most the chunk in flight (the server keeps what arrived even of that).
// - Retries cover the server's rules: a PATCH still held by a connection that died (423 until
//   the server closes it, after [serve] header_timeout_s of silence) or an offset that moved
//   (409, then HEAD).
// - Checksum: the whole file's SHA-256 is computed in a worker (`upload-hash.js`, js-sha256)
//   from the file itself. A file up to HASH_FIRST_BYTES is hashed before the upload starts and
//   the digest goes in the upload's metadata, so the server refuses a file that does not match
//   before probing it; a larger one is uploaded at once while the worker hashes it, and the
//   digest is compared with the one the server computed when the upload is `ready` (a
//   mismatch deletes the upload). `onSuccess` is called only after that comparison.
// - The end: the server checks size, checksum and the probe of `monsoon ingest`; this module
//   polls the upload until it is `ready` (onSuccess, with the probe's summary) or `failed`
//   (onError, with the server's reason, the CLI's words, and the rule the file breaks when
//   the server names one: `{name, …its values}`, for a translation).
//
// Usage (a module script of the studio page; URLs from the page's asset manifest):
//   const { startUpload } = await import(config.upload_js);
//   const upload = startUpload(file, {
//     hashWorker: config.upload_hash_js, sha256: config.sha256_js,
//     onProgress: (p) => …,   // { phase: "hashing" | "uploading" | "checking", done, total }
//     onError: (message, rule) => …,
//     onSuccess: (upload) => …, // the server's view: id, url, filename, probe, sha256, …
//     kind: "master",           // or "audio", "subtitles": what the server checks it as
//   });
//   upload.abort();   // stop; the server keeps what it has (resume by starting again)
//   upload.cancel();  // stop and delete the upload on the server

export const ENDPOINT = "/admin/api/uploads";
/** Bytes of one PATCH. */
export const CHUNK_BYTES = 64 * 1024 * 1024;
/** Files up to this size are hashed before the upload starts (a few seconds). */
export const HASH_FIRST_BYTES = 2 * 1024 * 1024 * 1024;
/**
 * Waits between attempts after a failure, ms: past the server's silence rule (10 s by
 * default), so a PATCH whose connection died has given the upload back.
 */
export const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 15000, 30000, 60000];
/** How often the upload is asked about while the server checks it, ms. */
const POLL_MS = 1000;

/**
 * The whole file's SHA-256 (hex), hashed by a worker; `onProgress(done, total)`.
 * Returns { digest: Promise<string>, stop() }.
 */
function hashFile(file, workerUrl, sha256Url, onProgress) {
  const worker = new Worker(workerUrl);
  const digest = new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      const m = event.data;
      if (m.error) {
        reject(new Error(m.error));
        worker.terminate();
      } else if (m.digest) {
        resolve(m.digest);
        worker.terminate();
      } else {
        onProgress(m.done, m.total);
      }
    };
    worker.onerror = (event) => {
      reject(new Error(event.message || "the hashing worker failed"));
      worker.terminate();
    };
  });
  worker.postMessage({ file, sha256: sha256Url });
  return { digest, stop: () => worker.terminate() };
}

async function getJson(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${url}: HTTP ${response.status}`);
  return body;
}

/** The session's CSRF token, which every state-changing request under /admin carries. */
function csrfHeaders() {
  const meta = globalThis.document && document.querySelector('meta[name="csrf-token"]');
  return meta ? { "X-CSRF-Token": meta.content } : {};
}

async function deleteUpload(url) {
  await fetch(url, {
    method: "DELETE",
    credentials: "same-origin",
    headers: { "Tus-Resumable": "1.0.0", ...csrfHeaders() },
  }).catch(() => {});
}

/** Polls the upload until the server's checks are over; its view. */
async function checked(url, stopped) {
  for (;;) {
    const view = await getJson(url);
    if (view.state !== "verifying" && view.state !== "uploading") return view;
    if (stopped()) throw new Error("stopped");
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * Uploads `file` (a File from an <input type=file> or a drop), resuming an upload of the same
 * file this browser started before. See the top of this file.
 */
export function startUpload(file, options = {}) {
  const tus = options.tus || globalThis.tus;
  const noop = () => {};
  const onProgress = options.onProgress || noop;
  const onError = options.onError || noop;
  const onSuccess = options.onSuccess || noop;
  if (!tus || !tus.isSupported) {
    onError("this browser cannot upload in parts (tus-js-client is not loaded or not supported)");
    return { abort: noop, cancel: noop };
  }
  if (!options.hashWorker || !options.sha256) {
    onError("startUpload needs the URLs of upload-hash.js (hashWorker) and sha256.js (sha256)");
    return { abort: noop, cancel: noop };
  }
  let upload = null;
  let stopped = false;
  let failed = false;
  const fail = (message, rule) => {
    if (failed || stopped) return;
    failed = true;
    hashing.stop();
    onError(message, rule);
  };
  const hashing = hashFile(file, options.hashWorker, options.sha256, (done, total) => {
    if (file.size <= HASH_FIRST_BYTES) onProgress({ phase: "hashing", done, total });
  });
  hashing.digest.catch((e) => fail(`reading ${file.name}: ${e.message}`));

  const begin = (digest) => {
    const metadata = { filename: file.name, filetype: file.type || "application/octet-stream" };
    if (digest) metadata.sha256 = digest;
    // What the file is for (`master`, `audio`, `subtitles`): the check the server makes.
    if (options.kind) metadata.kind = options.kind;
    upload = new tus.Upload(file, {
      endpoint: options.endpoint || ENDPOINT,
      headers: csrfHeaders(),
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      metadata,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (done, total) => onProgress({ phase: "uploading", done, total }),
      onError: (error) => {
        const response = error.originalResponse;
        let message = error.message;
        if (response) {
          try {
            message = JSON.parse(response.getBody()).message || message;
          } catch (_) {
            // Not the server's JSON: keep tus-js-client's words.
          }
        }
        fail(message);
      },
      onSuccess: async () => {
        onProgress({ phase: "checking", done: file.size, total: file.size });
        try {
          const view = await checked(upload.url, () => stopped);
          if (view.state === "failed") return fail(view.reason, view.rule);
          if (!digest) {
            const ours = await hashing.digest;
            if (ours !== view.sha256) {
              await deleteUpload(upload.url);
              return fail(
                `${file.name}: the server received a file whose SHA-256 is ${view.sha256}, ` +
                  `not ${ours} as read here; the upload was deleted, upload it again`,
              );
            }
          }
          if (!stopped) onSuccess(view);
        } catch (e) {
          fail(e.message);
        }
      },
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (stopped) return;
        if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      })
      .catch((e) => fail(e.message));
  };

  if (file.size <= HASH_FIRST_BYTES) {
    hashing.digest.then(begin, noop);
  } else {
    begin(null);
  }
  return {
    /** Stops; the server keeps what it has, and starting the same file again resumes. */
    abort: () => {
      stopped = true;
      hashing.stop();
      if (upload) upload.abort(false);
    },
    /** Stops and deletes the upload on the server. */
    cancel: () => {
      stopped = true;
      hashing.stop();
      if (upload) upload.abort(true);
    },
  };
}
