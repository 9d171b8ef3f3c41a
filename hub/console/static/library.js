// Library uploads: files picked or dropped each get a row with their own title, then go one
// after another to /console/content/upload (XMLHttpRequest, for its upload progress) with the
// session's CSRF token in a header; each row shows the hub's answer: stored (transcoded) or why not.
(function () {
  var form = document.getElementById("upload");
  if (!form) return;
  var input = document.getElementById("files"), queue = document.getElementById("queue");
  var drop = form.querySelector(".drop"), files = [];
  function add(list) {
    for (var i = 0; i < list.length; i++) {
      var f = list[i], li = document.createElement("li"), n = files.length;
      var label = document.createElement("label");
      label.textContent = form.dataset.title + " (" + f.name + ")";
      var title = document.createElement("input");
      title.required = true; title.name = "title-" + n; title.className = "ftitle";
      title.value = f.name.replace(/\.[^.]*$/, "").replace(/[_-]+/g, " ");
      label.appendChild(title);
      var bar = document.createElement("progress");
      bar.max = 100; bar.value = 0; bar.setAttribute("aria-label", f.name);
      var out = document.createElement("span");
      out.className = "result";
      li.append(label, bar, out);
      queue.appendChild(li);
      files.push({ file: f, title: title, bar: bar, out: out, done: false });
    }
  }
  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { e.preventDefault(); add(e.dataTransfer.files); });
  function send(job) {
    return new Promise(function (done) {
      var fd = new FormData();
      fd.append("title", job.title.value.trim());
      ["language", "theme", "format", "unit"].forEach(function (k) { fd.append(k, form.elements[k].value); });
      fd.append("file", job.file, job.file.name);
      var x = new XMLHttpRequest();
      x.open("POST", "/console/content/upload");
      x.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
      x.upload.onprogress = function (e) { if (e.lengthComputable) job.bar.value = Math.round(100 * e.loaded / e.total); };
      x.onload = function () {
        var r = {};
        try { r = JSON.parse(x.responseText); } catch (err) { r = { error: x.responseText }; }
        job.bar.value = 100;
        if (x.status === 200 || x.status === 201) {
          job.done = true;
          job.out.className = "result ok";
          job.out.textContent = (x.status === 201 ? form.dataset.done : form.dataset.dup) + " " + r.ref.slice(0, 19) + "… · " +
            Math.round(r.duration_s) + " s" + (r.note ? " — " + r.note : "");
        } else {
          job.out.className = "result bad";
          job.out.textContent = form.dataset.fail + " " + (r.error || x.status);
        }
        done();
      };
      x.onerror = function () { job.out.className = "result bad"; job.out.textContent = form.dataset.fail + " " + x.status; done(); };
      x.send(fd);
    });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!files.length) { queue.textContent = form.dataset.need; return; }
    if (!form.reportValidity()) return;
    var todo = files.filter(function (j) { return !j.done; });
    todo.reduce(function (p, j) { return p.then(function () { return send(j); }); }, Promise.resolve()).then(function () {
      form.dataset.finished = String(files.filter(function (j) { return j.done; }).length);
    });
  });
})();
