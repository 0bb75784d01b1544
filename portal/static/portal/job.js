// A job's stages moving live: the page asks the job API (GET /api/v1/jobs/<id>/) every data-poll-ms until the
// job has finished, and updates the table #job renders. window.registryFollowJob(url) starts it for a job the
// page learns of later (the upload page, once its upload is committed).
"use strict";
(function () {
  var FINAL = ["succeeded", "failed", "cancelled"];
  var section = document.getElementById("job");
  if (!section) return;
  var timer = null;

  function text(id, value) { document.getElementById(id).textContent = value; }
  function humanSize(count) {  // as the page renders sizes (dcos_bundle/sizes.py)
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], size = count, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return unit ? size.toFixed(1) + " " + units[unit] : count + " bytes";
  }

  function show(job) {
    section.hidden = false;
    var previous = document.getElementById("job-state").textContent;
    text("job-state", job.state);
    text("job-outcome", job.outcome ? " (" + job.outcome + ")" : "");
    text("job-package", job.package_name ? job.package_name + " " + (job.version || "") : "");
    if (previous !== job.state) text("job-live", "Job " + job.state + (job.stage ? ", stage " + job.stage : ""));
    var error = document.getElementById("job-error");
    error.hidden = !job.error;
    if (job.error) error.textContent = job.error.code + ": " + job.error.message;
    var result = document.getElementById("job-result");
    result.hidden = !job.result;
    if (job.result) {
      var link = document.getElementById("job-result-link");
      link.href = "/packages/" + encodeURIComponent(job.result.package) + "/" + encodeURIComponent(job.result.version) + "/";
      link.textContent = job.result.package + " " + job.result.version;
    }
    job.stages.forEach(function (stage) {
      var row = section.querySelector('tr[data-stage="' + stage.stage + '"]');
      if (!row) return;
      var percent = stage.percent.toFixed(1) + "%";  // as the page first shows it
      row.querySelector("progress").value = stage.percent;
      row.querySelector("progress").textContent = percent;
      row.querySelector(".percent").textContent = percent;
      row.querySelector(".bytes").textContent = humanSize(stage.bytes_done) + " of " + humanSize(stage.bytes_total);
      row.querySelector(".status").textContent = stage.finished_at ? "done" : (FINAL.indexOf(job.state) >= 0 ? job.state : "running");
    });
    section.dispatchEvent(new CustomEvent("job-update", { detail: job }));
  }

  function poll() {
    var url = section.dataset.jobUrl;
    var delay = Number(section.dataset.pollMs) || 1000;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (job) {
        show(job);
        if (FINAL.indexOf(job.state) < 0) timer = setTimeout(poll, delay);
      })
      .catch(function () { timer = setTimeout(poll, delay * 2); });  // the registry or the network is away: go on
  }

  window.registryFollowJob = function (url) {
    clearTimeout(timer);
    section.dataset.jobUrl = url;
    poll();
  };
  if (section.dataset.jobUrl && FINAL.indexOf(document.getElementById("job-state").textContent) < 0) poll();
})();
