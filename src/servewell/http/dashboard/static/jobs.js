// servewell dashboard, Jobs page: polls /ui/api/jobs and moves each job's progress bar,
// state, rows, rate and ETA; a new or finished job reloads the page (its buttons change).
"use strict";
(function () {
  const root = document.getElementById("jobs");
  if (!root) return;
  const source = root.getAttribute("data-source");
  const INTERVAL_MS = 1000;

  function figure(value) {
    return value === null || value === undefined ? "—" : Number(value.toPrecision(4)).toString();
  }

  function update(row, job) {
    const s = job.status;
    const set = function (field, text) {
      const element = row.querySelector('[data-field="' + field + '"]');
      if (element && element.textContent !== text) element.textContent = text;
    };
    const bar = row.querySelector('[data-field="progress"]');
    if (bar && job.progress !== null) {
      bar.value = job.progress;
      bar.textContent = Math.floor(job.progress * 100) + "%";
    }
    set("percent", job.progress === null ? "—" : Math.floor(job.progress * 100) + "%");
    set("rows", s.rows_done + " / " + (s.rows_total === null ? "?" : s.rows_total));
    set("rate", figure(s.rows_per_s));
    set("eta", s.eta_s === null ? "—" : Math.round(s.eta_s) + " s");
  }

  function refresh() {
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) {
        if (!data) return;
        let changed = false;
        const shown = root.querySelectorAll("tr[data-job]");
        if (shown.length !== data.jobs.length) changed = true;
        data.jobs.forEach(function (job) {
          const row = root.querySelector('tr[data-job="' + job.status.id + '"]');
          if (!row) { changed = true; return; }
          const state = row.querySelector('[data-field="state"]');
          if (state && state.textContent.trim() !== job.status.state) changed = true;
          update(row, job);
        });
        if (changed) window.location.replace(window.location.pathname);
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, INTERVAL_MS); });
  }

  window.setTimeout(refresh, INTERVAL_MS);
})();
