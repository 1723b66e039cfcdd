(function () {
  var el = document.getElementById("countdown");
  var s = JSON.parse(document.getElementById("countdown-strings").textContent);
  // The server's remaining seconds, not the device clock: phones are often set wrong.
  var end = Date.now() + 1000 * Number(el.dataset.remaining);
  function tick() {
    var r = Math.max(0, Math.round((end - Date.now()) / 1000));
    if (r === 0) { el.textContent = s.done; return; }
    var parts = [Math.floor(r / 86400), Math.floor(r % 86400 / 3600), Math.floor(r % 3600 / 60), r % 60];
    el.textContent = parts.map(function (v, i) { return v + " " + s.units[i]; }).join(" ");
    setTimeout(tick, 1000 - (Date.now() % 1000));
  }
  tick();
})();
