// A recording for a warning or bulletin: a file chosen, or one made with the microphone
// (MediaRecorder), goes to the library first (/console/content/upload, with a progress bar);
// the form then goes on with the stored recording chosen in its "recording" list.
(function () {
  document.querySelectorAll(".recupload").forEach(function (box) {
    var form = box.closest("form"), input = box.querySelector("input[type=file]");
    var bar = box.querySelector("progress"), state = box.querySelector(".upstate");
    var take = box.querySelector("audio.take"), recorded = null;
    var mic = box.querySelector(".mic"), rec = box.querySelector("button.rec"), recState = box.querySelector(".recstate");
    if (navigator.mediaDevices && window.MediaRecorder) {
      mic.hidden = false;
      var mr = null, chunks = [], startLabel = rec.textContent;
      rec.addEventListener("click", function () {
        if (mr) { mr.stop(); return; }
        navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
          chunks = [];
          mr = new MediaRecorder(stream);
          mr.ondataavailable = function (e) { chunks.push(e.data); };
          mr.onstop = function () {
            stream.getTracks().forEach(function (t) { t.stop(); });
            var blob = new Blob(chunks, { type: mr.mimeType || "audio/webm" });
            recorded = new File([blob], "ghi-am.webm", { type: blob.type });
            take.src = URL.createObjectURL(blob);
            take.hidden = false;
            recState.textContent = box.dataset.recorded;
            rec.textContent = startLabel;
            mr = null;
          };
          mr.start();
          rec.textContent = box.dataset.stop;
          recState.textContent = "● REC";
        }, function (err) { recState.textContent = box.dataset.nomic + " (" + err.name + ")"; });
      });
    }
    form.addEventListener("submit", function (e) {
      var file = input.files[0] || recorded;
      if (!file || form.dataset.uploaded) return;
      e.preventDefault();
      var fd = new FormData();
      var title = form.elements.title.value.trim() || file.name;
      fd.append("title", title);
      fd.append("file", file, file.name);
      var x = new XMLHttpRequest();
      x.open("POST", "/console/content/upload");
      x.setRequestHeader("X-CSRF-Token", box.dataset.csrf);
      bar.hidden = false;
      state.textContent = box.dataset.sending;
      x.upload.onprogress = function (ev) { if (ev.lengthComputable) bar.value = Math.round(100 * ev.loaded / ev.total); };
      x.onload = function () {
        var r = {};
        try { r = JSON.parse(x.responseText); } catch (err) { r = { error: x.responseText }; }
        if (x.status !== 200 && x.status !== 201) {
          state.className = "upstate bad";
          state.textContent = box.dataset.fail + " " + (r.error || x.status);
          return;
        }
        bar.value = 100;
        var sel = form.elements.content;
        sel.appendChild(new Option(r.title, r.ref, true, true));
        input.value = "";
        form.dataset.uploaded = "1";
        form.submit();
      };
      x.onerror = function () { state.className = "upstate bad"; state.textContent = box.dataset.fail + " " + x.status; };
      x.send(fd);
    });
  });
})();
