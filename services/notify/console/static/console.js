// ews console: refresh the board every 20 seconds; say when the data shown is no longer current.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var banner = document.getElementById("freshness");
  if (!board || !banner || !window.fetch) { return; }
  var lastGood = banner.getAttribute("data-as-of");
  function say(template, time) { return template.replace("{time}", time); }
  function refresh() {
    fetch(board.getAttribute("data-refresh"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        board.innerHTML = html;
        board.classList.remove("stale-data");
        var mark = board.querySelector(".as-of");
        lastGood = mark ? mark.getAttribute("data-as-of") : lastGood;
        if (mark && mark.getAttribute("data-loaded") === "yes") {
          banner.textContent = say(banner.getAttribute("data-fresh"), lastGood);
          banner.className = "banner ok";
        } else {
          banner.textContent = banner.getAttribute("data-loading");
          banner.className = "banner stale";
        }
      })
      .catch(function () {
        board.classList.add("stale-data");
        banner.textContent = say(banner.getAttribute("data-disconnected"), lastGood);
        banner.className = "banner stale";
      });
  }
  window.setInterval(refresh, 20000);
})();
