// Report page: dates are typed dd/mm/yyyy (what staff write); the calendar button beside each
// opens the browser's own date picker and writes the chosen day back in that form. Without
// script the fields are typed. The device and programme fields show only for proof of play.
(function () {
  document.querySelectorAll("button.cal").forEach(function (btn) {
    var text = document.getElementById(btn.dataset.for);
    var pick = document.querySelector('input.pick[data-for="' + btn.dataset.for + '"]');
    if (!text || !pick || !pick.showPicker) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text.value.trim());
      pick.value = m ? m[3] + "-" + ("0" + m[2]).slice(-2) + "-" + ("0" + m[1]).slice(-2) : "";
      pick.showPicker();
    });
    pick.addEventListener("change", function () {
      var p = pick.value.split("-");
      if (p.length === 3) text.value = p[2] + "/" + p[1] + "/" + p[0];
      text.focus();
    });
  });
  var kind = document.getElementById("kind");
  if (kind) {
    var only = function () {
      document.querySelectorAll(".plays-only").forEach(function (el) { el.hidden = kind.value !== "plays"; });
    };
    kind.addEventListener("change", only);
    only();
  }
})();
