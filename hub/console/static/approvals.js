// The approval queue's live updates: the server sends what waits (a key) whenever it changes;
// when it is not what the page shows, the page says so and offers to reload (a reason being
// typed is never lost to an automatic reload).
(function () {
  var note = document.getElementById("queue-live");
  if (!note || !window.EventSource) return;
  var es = new EventSource("/console/events?queue=1");
  es.addEventListener("queue", function (e) {
    var d = JSON.parse(e.data);
    note.hidden = d.key === note.dataset.key;
  });
})();
