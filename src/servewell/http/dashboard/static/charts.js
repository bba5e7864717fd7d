// servewell dashboard: draws each [data-plot] element's figures with uPlot. The figures
// are in the attribute as JSON ({"x": [seconds...], "series": [{"label", "values"}]});
// the table beside each chart holds the same figures for screen readers.
"use strict";
(function () {
  const COLORS = ["#0a4fb3", "#b35900", "#116329", "#8250df", "#cf222e", "#1b7c83", "#6e7781"];
  // The window's own span when the figures give it; else at least a minute around them
  // (one point alone would make uPlot span years).
  function span(figures, min, max) {
    if (figures.start !== null && figures.start !== undefined) return [figures.start, figures.end];
    return [Math.min(min, max - 60), max];
  }

  function draw(element) {
    let figures;
    try { figures = JSON.parse(element.getAttribute("data-plot")); } catch (e) { return; }
    if (!figures.x || !figures.x.length || !figures.series.length) return;
    const series = [servewellTime.series()].concat(figures.series.map(function (s, i) {
      return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true } };
    }));
    const data = [figures.x].concat(figures.series.map(function (s) { return s.values; }));
    const options = {
      width: Math.max(240, element.clientWidth || 480), height: 200, series: series,
      axes: [servewellTime.axis(), {}],
      scales: {
        x: { time: true, range: function (u, min, max) { return span(figures, min, max); } },
        y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.1 : 1]; } },
      },
    };
    new uPlot(options, data, element);
    const drawn = figures.series.reduce(function (n, s) {
      return n + s.values.filter(function (v) { return v !== null; }).length;
    }, 0);
    element.setAttribute("data-points", String(drawn));
  }
  document.querySelectorAll("[data-plot]").forEach(draw);
})();
