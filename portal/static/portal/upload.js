// Uploads from the browser with the resumable protocol the command-line client uses (docs/upload-api.md): open an
// upload session, PUT the file in chunks with Content-Range, commit, then follow the job (job.js).
//
// The session is remembered in localStorage under the file's name, size and modification time: choosing the same
// file after a reload asks the session for its offset and sends only the missing bytes; a session already
// committed shows its job. A dropped connection is retried with back-off, asking the offset again each time.
"use strict";
(function () {
  var form = document.getElementById("upload-form");
  if (!form) return;
  var CHUNK = Number(form.dataset.chunkBytes);
  var UPLOADS = form.dataset.uploadsUrl;
  var CSRF = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var input = document.getElementById("bundle-file");
  var zone = document.getElementById("drop-zone");
  var pauseButton = document.getElementById("upload-pause");
  var resumeButton = document.getElementById("upload-resume");
  var paused = false, wakeUp = null, busy = false;

  function say(message) { document.getElementById("upload-message").textContent = message; }
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function keyOf(file) { return "registry-upload:" + file.name + ":" + file.size + ":" + file.lastModified; }
  function humanSize(count) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], size = count, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return unit ? size.toFixed(1) + " " + units[unit] : count + " bytes";
  }
  function showOffset(offset, size) {
    document.getElementById("upload-progress").value = size ? Math.floor(100 * offset / size) : 100;
    document.getElementById("upload-bytes").textContent = humanSize(offset) + " of " + humanSize(size);
    form.dataset.offset = offset;
  }

  function RefusedError(status, body) {
    this.status = status;
    this.message = body && body.message ? body.message + " (" + body.code + ")" : "The registry answered " + status + ".";
  }

  // One API call; network failures reject with a TypeError (fetch's), answers resolve whatever their status.
  function call(method, url, body, headers) {
    var all = { "X-CSRFToken": CSRF, Accept: "application/json" };
    Object.keys(headers || {}).forEach(function (name) { all[name] = headers[name]; });
    return fetch(url, { method: method, body: body, headers: all, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          return { status: response.status, ok: response.ok, headers: response.headers, data: data };
        });
      });
  }

  // Until the registry answers: each network failure waits longer (up to 30 s) and tries again.
  async function persist(attempt) {
    for (var wait = 1000; ; wait = Math.min(wait * 2, 30000)) {
      try { return await attempt(); } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        say("The connection is lost; trying again in " + Math.round(wait / 1000) + " s…");
        await sleep(wait);
      }
    }
  }

  async function sessionFor(file, replace) {
    var key = keyOf(file);
    var saved = JSON.parse(localStorage.getItem(key) || "null");
    if (saved) {
      var known = await persist(function () { return call("GET", saved.url); });
      if (known.ok && (known.data.state === "open" || (known.data.state === "committed" && known.data.job))) {
        return { session: known.data, resumed: true };
      }
      localStorage.removeItem(key);  // cancelled, or gone: start again
    }
    var opened = await persist(function () {
      return call("POST", UPLOADS, JSON.stringify({ size: file.size, file_name: file.name, replace: replace }),
                  { "Content-Type": "application/json" });
    });
    if (!opened.ok) throw new RefusedError(opened.status, opened.data);
    localStorage.setItem(key, JSON.stringify({ url: opened.data.url }));
    return { session: opened.data, resumed: false };
  }

  async function waitWhilePaused(offset, size) {
    if (!paused) return;
    say("Paused at " + humanSize(offset) + " of " + humanSize(size) + ".");
    await new Promise(function (resolve) { wakeUp = resolve; });
  }

  async function sendChunks(file, session) {
    var offset = session.offset;
    showOffset(offset, file.size);
    while (offset < file.size) {
      await waitWhilePaused(offset, file.size);
      say("Sending…");
      var end = Math.min(offset + CHUNK, file.size);
      var answer;
      try {
        answer = await call("PUT", session.url, file.slice(offset, end), {
          "Content-Range": "bytes " + offset + "-" + (end - 1) + "/" + file.size,
          "Content-Type": "application/octet-stream"
        });
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        // The chunk may or may not have arrived: the session says where to go on.
        answer = await persist(function () { return sleep(1000).then(function () { return call("GET", session.url); }); });
        if (!answer.ok) throw new RefusedError(answer.status, answer.data);
        offset = answer.data.offset;
        showOffset(offset, file.size);
        continue;
      }
      if (answer.status === 416) {
        offset = Number(answer.headers.get("Upload-Offset"));
      } else if (!answer.ok) {
        throw new RefusedError(answer.status, answer.data);
      } else {
        offset = answer.data.offset;
      }
      showOffset(offset, file.size);
    }
  }

  async function upload(file) {
    if (busy) return;
    busy = true;
    paused = false;
    pauseButton.hidden = false;
    resumeButton.hidden = true;
    document.getElementById("upload-status").hidden = false;
    document.getElementById("upload-file").textContent = file.name;
    var key = keyOf(file);
    try {
      var found = await sessionFor(file, document.getElementById("replace").checked);
      var session = found.session, jobUrl = session.job;
      if (!jobUrl) {
        say(found.resumed ? "Resuming at " + humanSize(session.offset) + "." : "Sending…");
        form.dataset.resumedAt = found.resumed ? session.offset : "";
        await sendChunks(file, session);
        say("Every byte is there; committing…");
        var committed = await persist(function () { return call("POST", session.url + "commit/", "{}", { "Content-Type": "application/json" }); });
        if (!committed.ok) throw new RefusedError(committed.status, committed.data);
        jobUrl = committed.data.url;
      } else {
        showOffset(file.size, file.size);
      }
      say("Uploaded. The registry checks and publishes the bundle:");
      pauseButton.hidden = true;
      document.getElementById("job").addEventListener("job-update", function (event) {
        if (["succeeded", "failed", "cancelled"].indexOf(event.detail.state) >= 0) localStorage.removeItem(key);
      });
      window.registryFollowJob(jobUrl);
    } catch (error) {
      say("The upload stopped: " + error.message);
      if (error.status === 404 || error.status === 409 || error.status === 400) localStorage.removeItem(key);
    } finally {
      busy = false;
    }
  }

  input.addEventListener("change", function () { if (input.files.length) upload(input.files[0]); });
  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  pauseButton.addEventListener("click", function () {
    paused = true;
    pauseButton.hidden = true;
    resumeButton.hidden = false;
    resumeButton.focus();
  });
  resumeButton.addEventListener("click", function () {
    paused = false;
    resumeButton.hidden = true;
    pauseButton.hidden = false;
    pauseButton.focus();
    if (wakeUp) { wakeUp(); wakeUp = null; }
  });
})();
