// Keeps "what became of the decision" current without reloading the page: every few
// seconds it asks the server for the decisions on the page that are not settled yet
// (väntar / utförs) and shows their new status. A static file, because the pages'
// Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var INTERVAL_MS = 3000;
  var STOP_AFTER_MS = 30 * 60 * 1000;
  var started = Date.now();

  function pending() {
    return Array.prototype.slice.call(document.querySelectorAll('[data-decision-status][data-settled="false"]'));
  }

  function apply(box, s) {
    box.className = "decision-status status-" + s.code + (s.late ? " late" : "");
    box.setAttribute("data-settled", s.settled ? "true" : "false");
    var label = box.querySelector(".decision-label");
    var text = box.querySelector(".decision-text");
    if (label) { label.textContent = s.label; }
    if (text) { text.textContent = s.text; }
    var retry = box.querySelector(".decision-retry");
    if (retry) { retry.hidden = !s.can_retry; }
  }

  function poll() {
    var boxes = pending();
    if (!boxes.length || Date.now() - started > STOP_AFTER_MS) { return; }
    var ids = boxes.map(function (b) { return b.getAttribute("data-decision-status"); });
    var unique = ids.filter(function (id, i) { return ids.indexOf(id) === i; });
    fetch("/inbox/decisions/status?ids=" + encodeURIComponent(unique.join(",")), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) { return r.ok ? r.json() : { decisions: [] }; })
      .then(function (body) {
        (body.decisions || []).forEach(function (s) {
          document.querySelectorAll('[data-decision-status="' + s.id + '"]').forEach(function (box) { apply(box, s); });
        });
      })
      .catch(function () { /* the next round tries again */ })
      .then(function () { window.setTimeout(poll, INTERVAL_MS); });
  }

  if (pending().length) { window.setTimeout(poll, INTERVAL_MS); }
})();
