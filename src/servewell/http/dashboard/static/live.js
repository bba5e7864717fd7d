// servewell dashboard, Live page: polls /ui/api/live and draws each chart with uPlot;
// each chart's table holds the newest figures (what a screen reader reads).
"use strict";
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const COLORS = ["#0a4fb3", "#b35900", "#116329", "#8250df", "#cf222e", "#1b7c83", "#6e7781"];
  const TABLE_POINTS = 5;
  const source = root.getAttribute("data-source");
  const intervalMs = Math.max(1000, parseFloat(root.getAttribute("data-interval-s")) * 1000);
  const plots = {};

  // At least the last two minutes on the x axis (one point alone would span years).
  function span(u, min, max) {
    const now = Date.now() / 1000;
    const end = max === null || max === undefined ? now : max;
    const start = min === null || min === undefined ? end - 120 : Math.min(min, end - 120);
    return [start, end];
  }
  // From 0 up, at least 1 high: rates, shares and depths are never negative.
  function floor(u, min, max) {
    return [0, max === null || max === undefined || max <= 0 ? 1 : max * 1.1];
  }

  function label(series) { return series.model + "@" + series.version; }

  function columnsOf(data, key, scale) {
    const times = Array.from(new Set([].concat.apply([], data.series.map(function (s) {
      return s.points.map(function (p) { return p.at; });
    })))).sort(function (a, b) { return a - b; });
    const columns = [times];
    data.series.forEach(function (s) {
      const byTime = {};
      s.points.forEach(function (p) { byTime[p.at] = p[key]; });
      columns.push(times.map(function (t) {
        const value = byTime[t];
        return value === undefined || value === null ? null : value * scale;
      }));
    });
    return columns;
  }

  function draw(element, data) {
    const key = element.getAttribute("data-chart");
    const scale = parseFloat(element.getAttribute("data-scale"));
    const columns = columnsOf(data, key, scale);
    const names = data.series.map(label).join("|");
    let entry = plots[key];
    if (!entry || entry.names !== names) {
      if (entry) entry.plot.destroy();
      const series = [servewellTime.series()].concat(data.series.map(function (s, i) {
        return { label: label(s), stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: { show: true } };
      }));
      const options = {
        width: Math.max(240, element.clientWidth || 320), height: 180, series: series,
        axes: [servewellTime.axis(), {}],
        scales: { x: { time: true, range: span }, y: { range: floor } }, legend: { show: true },
      };
      entry = plots[key] = { names: names, plot: new uPlot(options, columns, element) };
    } else {
      entry.plot.setData(columns);
    }
    const drawn = columns.slice(1).reduce(function (n, ys) {
      return n + ys.filter(function (y) { return y !== null; }).length;
    }, 0);
    element.setAttribute("data-points", String(drawn));
    fillTable(document.querySelector('table[data-table="' + key + '"]'), data, columns);
  }

  function cell(tag, text, numeric) {
    const element = document.createElement(tag);
    element.textContent = text;
    if (numeric) element.className = "num";
    if (tag === "th") element.setAttribute("scope", "col");
    return element;
  }

  function fillTable(table, data, columns) {
    if (!table) return;
    const head = document.createElement("tr");
    head.appendChild(cell("th", "Time (UTC)"));
    data.series.forEach(function (s) { head.appendChild(cell("th", label(s), true)); });
    table.tHead.replaceChildren(head);
    const rows = [];
    const times = columns[0];
    for (let i = Math.max(0, times.length - TABLE_POINTS); i < times.length; i++) {
      const row = document.createElement("tr");
      row.appendChild(cell("td", new Date(times[i] * 1000).toISOString().slice(11, 19)));
      columns.slice(1).forEach(function (ys) {
        row.appendChild(cell("td", ys[i] === null ? "—" : Number(ys[i].toPrecision(4)).toString(), true));
      });
      rows.push(row);
    }
    table.tBodies[0].replaceChildren.apply(table.tBodies[0], rows);
  }

  function fillState(data) {
    const body = document.querySelector("#live-state tbody");
    if (!body) return;
    const rows = data.series.map(function (s) {
      const last = s.points[s.points.length - 1] || {};
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = "?model=" + encodeURIComponent(s.model);
      link.textContent = s.model;
      name.append(link, "@" + s.version);
      row.appendChild(name);
      const breaker = cell("td", last.breaker ? last.breaker.replace("_", "-") : "—");
      if (last.breaker === "open") breaker.className = "status-bad";
      if (last.breaker === "closed") breaker.className = "status-ok";
      row.appendChild(breaker);
      const figure = function (v) { return v === undefined || v === null ? "—" : Number(v.toPrecision(4)).toString(); };
      row.appendChild(cell("td", figure(last.queue_depth), true));
      row.appendChild(cell("td", figure(last.requests_per_s), true));
      const errors = Object.keys(last.errors_by_status || {}).map(function (status) {
        return status + ": " + figure(last.errors_by_status[status] * 100) + "%";
      });
      row.appendChild(cell("td", last.at ? (errors.join(", ") || "none") : "—"));
      return row;
    });
    body.replaceChildren.apply(body, rows);
  }

  function refresh() {
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (answer.status === 401) { window.location.reload(); return null; }
        return answer.ok ? answer.json() : null;
      })
      .then(function (data) {
        if (!data) return;
        document.getElementById("live-empty").hidden = data.series.length > 0;
        root.querySelectorAll("[data-chart]").forEach(function (element) { draw(element, data); });
        fillState(data);
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, intervalMs); });
  }

  refresh();
})();
