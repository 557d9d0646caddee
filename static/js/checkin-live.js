// The live numbers of a check-in list refresh themselves: the page asks the server for its numbers
// fragment every few seconds and puts it in place. Without JavaScript the page reloads itself instead.
(function () {
  "use strict";
  var box = document.getElementById("live-numbers");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-refresh-url");
  var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 10;
  var status = document.getElementById("live-status");
  var updated = document.getElementById("live-updated");
  var lastSummary = summary();
  var busy = false;

  function summary() {
    var section = box.querySelector("[data-summary]");
    return section ? section.getAttribute("data-summary") : "";
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        var now = summary();
        // Screen readers hear the count when it changes, not every refresh.
        if (status && now !== lastSummary) { status.textContent = now; }
        lastSummary = now;
        var section = box.querySelector("[data-updated]");
        if (updated && section) { updated.textContent = "Last updated " + section.getAttribute("data-updated") + "."; }
      })
      .catch(function () {
        if (updated) { updated.textContent = "Could not update just now; trying again."; }
      })
      .then(function () { busy = false; });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
}());
