// The start of a watch page (an inline script, allowed by its hash in the page's CSP): fetch
// the first segments of the floor rung and of its sound at once, from the page's head, so that
// on a slow link their bytes arrive while the player's script does. Segments are immutable and
// cached: the player, whichever engine, finds them in the HTTP cache. It starts where the
// player will, by the player's own rule (web/src/player.js: a saved position more than 5 s in
// and more than 10 s before the end).
(function () {
  try {
    var c = JSON.parse(document.getElementById("player-start").textContent);
    var at = parseFloat(localStorage.getItem("monsoon.pos." + c.film) || "0");
    if (!(at > 5 && at < c.duration_s - 10)) at = 0;
    var index = String(Math.floor(at / c.segment_s));
    var name = c.segment_pattern.replace("%05d", ("0000" + index).slice(-Math.max(5, index.length)));
    c.renditions.forEach(function (dir) { fetch(dir + name); });
  } catch (e) { /* the player fetches them itself */ }
})();
