// The live view of a broadcast: each confirmation that lands (a "play" event, console.js)
// marks its cluster's row and raises the count of clusters heard.
(function () {
  var table = document.getElementById("reached");
  if (!table) return;
  document.addEventListener("loa:play", function (e) {
    var p = e.detail, row = table.querySelector('tr[data-device="' + CSS.escape(p.device) + '"]');
    if (!row) return;
    var cell = row.querySelector(".heard");
    var fresh = !row.classList.contains("done");
    cell.textContent = (table.dataset["r_" + p.result] || p.result) + " · " + p.start;
    cell.className = "heard r-" + p.result;
    row.classList.add("done");
    if (fresh) {
      var n = document.getElementById("heard");
      n.textContent = String(Number(n.textContent) + 1);
    }
  });
})();
