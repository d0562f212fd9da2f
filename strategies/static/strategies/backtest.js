// The backtest report page follows its run: it polls the JSON status every second, moves the
// progress bar, and reloads once the run is finished (the server then draws the report).
(function () {
  "use strict";
  function start() {
    var root = document.querySelector(".atom-backtest-report");
    if (!root || root.dataset.finished === "1") { return; }
    var url = root.dataset.statusUrl;
    var bar = document.getElementById("atom-backtest-bar");
    var label = document.getElementById("atom-backtest-status");
    var count = document.getElementById("atom-backtest-count");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(poll, 3000); return; }
          if (bar) { bar.value = data.percent; bar.textContent = data.percent + "%"; }
          if (label) { label.textContent = data.label; }
          if (count) { count.textContent = data.processed + " / " + data.total; }
          if (data.finished) { window.location.reload(); return; }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
