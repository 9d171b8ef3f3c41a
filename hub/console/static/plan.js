// The delivery view: each device's row follows the server-sent delivery events; "done" when
// every device is active or offline, "end" when each active one has also confirmed a play.
"use strict";
(function () {
  var table = document.querySelector("table.delivery[data-events]");
  if (!table || !window.EventSource) return;
  var progress = document.getElementById("progress");
  var es = new EventSource(table.dataset.events);
  es.addEventListener("delivery", function (e) {
    var d = JSON.parse(e.data);
    var row = table.querySelector('tr[data-device="' + CSS.escape(d.id) + '"]');
    if (!row) return;
    var st = row.querySelector(".st");
    st.textContent = d.online ? st.dataset.yes : st.dataset.no;
    row.querySelector(".rev").textContent = d.revision || "—";
    var dl = row.querySelector(".dl");
    dl.dataset.state = d.state || "";
    dl.textContent = d.label + (d.reason ? ": " + d.reason : "");
    var pl = row.querySelector(".pl");
    pl.dataset.played = d.played ? "1" : "";
    pl.textContent = d.played || "—";
  });
  es.addEventListener("done", function () {
    progress.textContent = progress.dataset.done;
    progress.dataset.finished = "1";
  });
  es.addEventListener("end", function () {
    es.close();
    progress.textContent = progress.dataset.allPlayed;
    progress.dataset.ended = "1";
  });
})();
