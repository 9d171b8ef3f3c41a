// A screenshot just asked for arrives a few seconds later: retry the image every 3 s for a
// minute, then say there is none. Without a pending command a missing image says so at once.
(function () {
  var img = document.getElementById("shot"), note = document.getElementById("shotnote");
  if (!img) return;
  var tries = 0, src = img.getAttribute("src");
  function missing() {
    img.hidden = true;
    if (img.dataset.wait && tries++ < 20) {
      note.textContent = img.dataset.waiting;
      setTimeout(function () { img.src = src + "&t=" + tries; }, 3000);
    } else {
      note.textContent = img.dataset.none;
    }
  }
  img.addEventListener("error", missing);
  img.addEventListener("load", function () { img.hidden = false; note.textContent = ""; });
  if (img.complete && img.naturalWidth === 0) missing();
})();
