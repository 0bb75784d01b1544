// The admin's job page keeps up with the job: it asks the job API every data-poll-ms (as the signed-in staff
// user) and updates the state, stage, progress and the stage rows, until the job has finished.
"use strict";
(function () {
  var FINAL = ["succeeded", "failed", "cancelled"];
  var STAGE_NAMES = { receive: "Receive", inspect: "Inspect", validate: "Validate", verify_images: "Verify Images",
                      store: "Store", publish: "Publish" };
  var marker = document.getElementById("job-progress");
  if (!marker) return;

  function humanSize(count) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], size = count, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return unit ? size.toFixed(1) + " " + units[unit] : count + " bytes";
  }
  function capitalised(word) { return word.charAt(0).toUpperCase() + word.slice(1); }
  function setField(name, value) {
    var cell = document.querySelector(".field-" + name + " .readonly");
    if (cell) cell.textContent = value;
  }
  function setCell(row, name, value, title) {
    var cell = row.querySelector(".field-" + name + " p");
    if (!cell) return;
    cell.textContent = value;
    if (title) cell.title = title;
  }
  function setSize(row, name, count) {
    setCell(row, name, humanSize(count), count.toLocaleString("en-US") + " bytes");
  }
  function when(iso) { return new Date(iso).toLocaleString(); }

  // As the server writes it: a stage that counts no bytes shows its percent alone.
  function progressText(stage) {
    var percent = " (" + stage.percent.toFixed(1) + "%)";
    if (!stage.bytes_total) return STAGE_NAMES[stage.stage] + percent;
    return STAGE_NAMES[stage.stage] + ": " + humanSize(stage.bytes_done) + " of " + humanSize(stage.bytes_total) + percent;
  }

  function show(job) {
    var stateCell = document.querySelector(".field-state .readonly");
    if (stateCell && stateCell.textContent.toLowerCase() !== job.state) marker.textContent = "Job " + job.state;
    setField("state", capitalised(job.state));
    setField("stage", STAGE_NAMES[job.stage] || job.stage || "-");
    var current = job.stages.filter(function (stage) { return stage.stage === job.stage; })[0];
    setField("progress", current ? progressText(current) : "-");
    if (job.error) { setField("error_code", job.error.code); setField("error_message", job.error.message); }
    var body = document.querySelector("table.registry-stages tbody");
    job.stages.forEach(function (stage) {
      var row = body && body.querySelector('tr[data-stage="' + stage.stage + '"]');
      if (!row && body) {
        // A stage reached since the page loaded: a row like the others.
        row = document.createElement("tr");
        row.className = "form-row has_original";
        row.dataset.stage = stage.stage;
        row.innerHTML = '<td class="original"></td><td class="field-stage"><p></p></td><td class="field-done"><p></p></td>' +
          '<td class="field-total"><p></p></td><td class="field-percent"><p></p></td>' +
          '<td class="field-started_at"><p></p></td><td class="field-finished_at"><p></p></td><td class="delete"></td>';
        body.appendChild(row);
        setCell(row, "stage", STAGE_NAMES[stage.stage] || stage.stage);
        setCell(row, "started_at", stage.started_at ? when(stage.started_at) : "-");
        setCell(row, "finished_at", "-");
      }
      if (!row) return;
      setSize(row, "done", stage.bytes_done);
      setSize(row, "total", stage.bytes_total);
      setCell(row, "percent", stage.percent.toFixed(1));
      var finished = row.querySelector(".field-finished_at p");
      // A time the page rendered stays as Django wrote it; one reached since shows in the browser's words.
      if (stage.finished_at && finished && finished.textContent.trim() === "-") setCell(row, "finished_at", when(stage.finished_at));
    });
    return FINAL.indexOf(job.state) >= 0;
  }

  function poll() {
    var delay = Number(marker.dataset.pollMs) || 1000;
    fetch(marker.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (job) { if (!show(job)) setTimeout(poll, delay); })
      .catch(function () { setTimeout(poll, delay * 2); });
  }
  poll();
})();
