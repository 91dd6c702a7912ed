// The admin center's session player: asciinema-player on the recording, and the gate's
// decisions beside it; choosing one jumps to its marker on the timeline.
(function () {
  "use strict";
  var el = document.getElementById("player");
  if (!el || !window.AsciinemaPlayer) {
    return;
  }
  // Real time (no idle compression), so the timer matches the audit log's times.
  var player = window.AsciinemaPlayer.create(el.getAttribute("data-src"), el, {
    fit: "width",
    preload: true
  });
  var items = document.querySelectorAll("li.decision");
  // Opened from the audit search at a decision: start at its marker.
  var start = parseInt(el.getAttribute("data-start-marker") || "0", 10);
  if (start > 0) {
    var first = document.querySelector('button[data-marker="' + start + '"]');
    if (first) {
      window.setTimeout(function () { first.click(); }, 0);
    }
  }
  document.querySelectorAll("button[data-marker]").forEach(function (button) {
    button.addEventListener("click", function () {
      var marker = parseInt(button.getAttribute("data-marker"), 10);
      if (marker > 0) {
        player.seek({ marker: marker - 1 }).then(function () {
          return player.play();
        });
      }
      items.forEach(function (li) {
        li.classList.remove("current");
        li.removeAttribute("aria-current");
      });
      var li = button.closest("li");
      if (li) {
        li.classList.add("current");
        li.setAttribute("aria-current", "true");
      }
      var status = document.getElementById("jumped");
      if (status) {
        status.textContent = "Playing from decision " + marker;
      }
    });
  });
})();
