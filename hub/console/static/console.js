// Live status: the server sends a device's state when it changes (server-sent events); rows
// and cards marked data-device are updated in place. Nothing else on the pages needs script.
(function () {
  var badge = document.querySelector(".live");
  if (!badge || !window.EventSource) return;
  var q = new URLSearchParams(location.search);
  var eq = new URLSearchParams();
  ["area", "series"].forEach(function (k) { if (q.get(k)) eq.set(k, q.get(k)); });
  var es = new EventSource("/console/events" + (eq.toString() ? "?" + eq : ""));
  es.onopen = function () { badge.textContent = badge.dataset.live; badge.classList.remove("off"); };
  es.onerror = function () { badge.textContent = badge.dataset.off; badge.classList.add("off"); };
  es.addEventListener("device", function (e) {
    var d = JSON.parse(e.data);
    document.querySelectorAll('[data-device="' + CSS.escape(d.id) + '"]').forEach(function (el) {
      var np = el.querySelector(".np");
      if (np) np.textContent = d.now_playing || "";
      var st = el.querySelector(".st");
      if (st) st.innerHTML = "", st.appendChild(Object.assign(document.createElement("span"),
        { className: d.online ? "ok" : "warn", textContent: d.online ? st.dataset.yes : st.dataset.no }));
    });
    document.dispatchEvent(new CustomEvent("loa:device", { detail: d }));
  });
  // A broadcast's confirmations (the emergency live view, live.js).
  es.addEventListener("play", function (e) {
    document.dispatchEvent(new CustomEvent("loa:play", { detail: JSON.parse(e.data) }));
  });
})();
