// The viewer pages' small script (home and film pages; the player has its own). The pages work
// without it; it adds what only the browser knows or can do:
// - "Continue watching" on the home page: the player keeps each film's position in
//   localStorage (`monsoon.pos.<slug>`, seconds as text; see player.js), so the server cannot
//   render this row. The row is on the page, hidden; this fills it with copies of the
//   catalog's cards for films left part-way, with the progress, and reveals it.
// - "Share" on a film page: the Web Share API (W3C Web Share) where the browser has it, else
//   the Clipboard API (W3C Clipboard API and events), else the link shown selected to copy by
//   hand. What is shared is the page's canonical URL, which the server builds from its
//   configuration, never from the address bar.
(function () {
  "use strict";

  var stored = function (key) {
    try { return localStorage.getItem(key); } catch (e) { return null; } // storage refused
  };

  // The player resumes a position only between these bounds (player.js): the row offers the
  // same films.
  var RESUME_MIN_S = 5;
  var RESUME_END_MARGIN_S = 10;

  function continueWatching() {
    var row = document.getElementById("continue");
    if (!row) return;
    var list = row.querySelector("ul");
    var seen = {};
    var cards = document.querySelectorAll(".shelf li.card[data-duration]");
    for (var i = 0; i < cards.length; i++) {
      var card = cards[i];
      var slug = card.getAttribute("data-slug");
      var duration = parseFloat(card.getAttribute("data-duration"));
      if (!slug || seen[slug] || !(duration > 0)) continue;
      var at = parseFloat(stored("monsoon.pos." + slug) || "0");
      if (!(at > RESUME_MIN_S && at < duration - RESUME_END_MARGIN_S)) continue;
      seen[slug] = true;
      var copy = card.cloneNode(true);
      copy.removeAttribute("data-slug");
      copy.removeAttribute("data-duration");
      var link = copy.querySelector("a");
      link.setAttribute("href", "/watch/" + encodeURIComponent(slug));
      var note = copy.querySelector(".note");
      if (note) note.remove();
      var progress = document.createElement("progress");
      progress.max = Math.round(duration);
      progress.value = Math.round(at);
      var percent = Math.round((100 * at) / duration);
      progress.setAttribute("aria-label", row.getAttribute("data-watched") + " " + percent + "%");
      var left = document.createElement("span");
      left.className = "note";
      left.textContent = row.getAttribute("data-left")
        .replace("{n}", String(Math.max(1, Math.round((duration - at) / 60))));
      link.appendChild(progress);
      link.appendChild(left);
      list.appendChild(copy);
    }
    if (list.children.length > 0) row.hidden = false;
  }

  function share() {
    var button = document.getElementById("share");
    var canonical = document.querySelector('link[rel="canonical"]');
    if (!button || !canonical) return;
    var url = canonical.href;
    var status = document.getElementById("share-status");
    var field = document.getElementById("share-url");
    var showLink = function () {
      field.value = url;
      field.hidden = false;
      field.focus();
      field.select();
    };
    button.hidden = false;
    button.addEventListener("click", function () {
      status.textContent = "";
      if (navigator.share) {
        var title = document.querySelector("h1");
        navigator.share({ title: title ? title.textContent : document.title, url: url })
          .catch(function (e) {
            // The viewer closed the share sheet: nothing to do. Anything else: the link.
            if (!e || e.name !== "AbortError") showLink();
          });
      } else if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(url).then(function () {
          status.textContent = button.getAttribute("data-copied");
        }, showLink);
      } else {
        showLink();
      }
    });
  }

  continueWatching();
  share();
})();
