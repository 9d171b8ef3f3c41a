// The play log's first page grows as confirmations land: the server sends each new row,
// already rendered and escaped, over the console's event stream; rows the page shows are
// skipped by their device#seq key.
(function () {
  var badge = document.querySelector(".live-plays");
  if (!badge || !window.EventSource) return;
  var es = new EventSource(badge.dataset.src);
  es.onopen = function () { badge.textContent = badge.dataset.live; badge.classList.remove("off"); };
  es.onerror = function () { badge.textContent = badge.dataset.off; badge.classList.add("off"); };
  es.addEventListener("play", function (e) {
    var d = JSON.parse(e.data);
    var body = document.querySelector("table.plays tbody");
    if (!body) { es.close(); location.reload(); return; } // the first play of an empty log
    if (body.querySelector('tr[data-key="' + CSS.escape(d.key) + '"]')) return;
    var t = document.createElement("template");
    t.innerHTML = d.html.trim();
    var row = t.content.firstElementChild;
    row.classList.add("new");
    body.insertBefore(row, body.firstChild);
  });
})();
