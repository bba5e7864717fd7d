// servewell dashboard: the charts' time axis and legend in 24-hour UTC, as the tables
// beside them are (uPlot's default is the browser's local time, 12-hour). Loaded before
// charts.js and live.js, which pass servewellTime.axis() and servewellTime.series().
"use strict";
window.servewellTime = (function () {
  function pad(n) { return String(n).padStart(2, "0"); }
  function day(d) { return pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  function clock(d, seconds) {
    const hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    return seconds ? hm + ":" + pad(d.getUTCSeconds()) : hm;
  }
  // Tick labels: seconds shown when ticks are under a minute apart, the date when the
  // axis spans more than a day (alone when ticks are a day or more apart).
  function values(u, splits, axisIdx, space, incr) {
    const scale = u.scales.x;
    const long = scale.max - scale.min > 86400;
    return splits.map(function (t) {
      const d = new Date(t * 1000);
      if (incr >= 86400) return day(d);
      const time = clock(d, incr < 60);
      return long ? day(d) + " " + time : time;
    });
  }
  function legend(u, t) {
    if (t === null || t === undefined) return "—";
    const d = new Date(t * 1000);
    return d.getUTCFullYear() + "-" + day(d) + " " + clock(d, true) + " UTC";
  }
  return {
    axis: function () { return { values: values, label: "UTC", labelSize: 20 }; },
    series: function () { return { label: "Time (UTC)", value: legend }; },
  };
})();
