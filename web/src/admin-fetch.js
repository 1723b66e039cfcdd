// The studio's requests to /admin: `adminFetch(url, options)` is `fetch` with the session's
// CSRF token (the page's <meta name="csrf-token">) in the X-CSRF-Token header of every
// state-changing request, and the cookie sent. The server refuses a POST, PUT, PATCH or
// DELETE under /admin without it (403; crates/server/src/csrf.rs). A 401 (the session has
// ended) sends the page to the sign-in form. Loaded before the studio's other scripts, which
// call `adminFetch` (and `adminCsrf()` for a token to put in a form of their own).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.content : "";
  var SAFE = { GET: true, HEAD: true, OPTIONS: true };

  function adminFetch(url, options) {
    var opts = Object.assign({ credentials: "same-origin" }, options || {});
    var method = (opts.method || "GET").toUpperCase();
    if (!SAFE[method]) {
      var headers = new Headers(opts.headers || {});
      headers.set("X-CSRF-Token", token);
      opts.headers = headers;
    }
    return fetch(url, opts).then(function (r) {
      if (r.status === 401) {
        // Signed in again in the page's language (`<html lang>`).
        location.href = "/admin/login?lang=" + encodeURIComponent(document.documentElement.lang || "vi");
        throw new Error("signed out");
      }
      return r;
    });
  }

  window.adminFetch = adminFetch;
  window.adminCsrf = function () { return token; };
})();
