// Refreshes the status page's live part in place: fetches /status/fragment every
// ALERT_EVAL_INTERVAL (data-refresh-ms) and swaps it in, so the page never reloads or flashes.
(function () {
  "use strict";
  var live = document.getElementById("status-live");
  var note = document.getElementById("refresh-note");
  var announcer = document.getElementById("status-announcer");
  if (!live || !window.fetch) {
    return;
  }
  var every = Math.max(1000, Number(live.getAttribute("data-refresh-ms")) || 15000);
  var url = live.getAttribute("data-fragment-url");

  function clock(date) {
    return date.toISOString().slice(11, 19) + " UTC";
  }

  function swap(html) {
    var parsed = new DOMParser().parseFromString(html, "text/html");
    var content = parsed.getElementById("status-content");
    if (!content) {
      throw new Error("unexpected answer");
    }
    var before = live.querySelector("#status-content");
    var word = content.getAttribute("data-status-word");
    if (before && before.getAttribute("data-status") !== content.getAttribute("data-status")) {
      announcer.textContent = "Overall status is now " + word + ".";  // only changes are announced
    }
    live.replaceChildren(document.importNode(content, true));
    document.title = word + " · Gateway status";
    note.textContent = "Updated at " + clock(new Date()) + "; refreshes every " + every / 1000 + " s.";
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(swap)
      .catch(function (error) {
        note.textContent = "Refresh failed at " + clock(new Date()) + " (" + error.message + "); retrying.";
      })
      .then(function () {
        window.setTimeout(refresh, every);
      });
  }

  window.setTimeout(refresh, every);
})();
