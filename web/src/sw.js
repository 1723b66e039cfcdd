// Monsoon's service worker: films saved for offline viewing play without a connection.
//
// It is registered only by a viewer who saves a film (web/src/offline.js, which also does the
// saving, into one Cache Storage cache per film). It answers from those caches and from
// nothing else: the saved film's media (immutable, so cache first), the watch page and its
// scripts (network first, so an online viewer gets today's page), and the multivariant
// playlist (network first; offline, the saved one, which names only the saved rung).
// Everything else goes to the network untouched.
"use strict";
const PREFIX = "monsoon-offline-";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

async function saved(request) {
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX)) continue;
    const hit = await (await caches.open(name)).match(request, { ignoreSearch: true, ignoreVary: true });
    if (hit) return hit;
  }
  return null;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const path = url.pathname;
  const page = request.mode === "navigate" && path.startsWith("/watch/");
  const master = path.startsWith("/media/") && path.endsWith("/master.m3u8");
  if (page || master || path.startsWith("/static/")) {
    event.respondWith(fetch(request).catch(() => saved(request).then((r) => r || Response.error())));
  } else if (path.startsWith("/media/")) {
    event.respondWith(saved(request).then((r) => r || fetch(request)));
  }
});
