// Monsoon player: hls.js where Media Source Extensions exist, native HLS elsewhere (Safari).
// Starts on the lowest rung and climbs, so a weak link gets a picture first.
(function () {
  "use strict";
  var video = document.getElementById("player");
  if (!video) return;
  var src = video.dataset.hls;

  if (window.Hls && window.Hls.isSupported()) {
    var hls = new window.Hls({
      startLevel: 0,
      capLevelToPlayerSize: true,
      maxBufferLength: 30,
    });
    hls.on(window.Hls.Events.ERROR, function (_event, data) {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) {
        hls.startLoad();
      } else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        hls.destroy();
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    window.monsoonHls = hls;
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
  }
})();
