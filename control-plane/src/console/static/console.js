// sortie console: a running execution's log grows as its runner sends it.
// The page works without this; it only saves reloading.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || log.dataset.live !== "yes") { return; }
  var status = document.getElementById("status");
  function poll() {
    // A long poll: the server answers when there is something new.
    var shown = status ? status.textContent : "";
    fetch(log.dataset.url + "?offset=" + encodeURIComponent(log.dataset.offset) +
          "&status=" + encodeURIComponent(shown),
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (next) {
        if (next.html) {
          var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.insertAdjacentHTML("beforeend", next.html);
          if (atEnd) { log.scrollTop = log.scrollHeight; }
        }
        log.dataset.offset = String(next.offset);
        if (status && next.status) {
          status.textContent = next.status;
          status.className = "status " + next.status;
        }
        // Over: the page again, with its steps and data.
        if (next.done) { log.dataset.live = "no"; window.location.reload(); return; }
        poll();
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();
