// ganas dashboard: several searches' fronts on one plotly.js chart (the page's table says the same without JavaScript).
"use strict";

const GANAS_COLORS = ["#c2410c", "#2563eb", "#15803d", "#7c3aed", "#b45309", "#0e7490", "#be185d", "#4d7c0f",
                      "#1e40af", "#9f1239", "#065f46", "#6b21a8"];

function ganasCompareNumber(value) {
  const a = Math.abs(value);
  for (const [scale, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (a >= scale) return (value / scale).toPrecision(3).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "") + unit;
  }
  return Number(value).toPrecision(4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

function ganasCompareTraces(data) {
  const traces = [], xs = [];
  data.searches.forEach((s, k) => {
    const color = GANAS_COLORS[k % GANAS_COLORS.length];
    const hv = s.hypervolume === null ? "no front" : `hypervolume ${ganasCompareNumber(s.hypervolume)}`;
    const texts = s.config.map((c, i) => `<b>${s.label}</b><br>${c}${s.on_front[i] ? " (on the front)" : ""}` +
                                         `<br>MACs ${ganasCompareNumber(s.macs[i])}<br>${data.metric} ${ganasCompareNumber(s.value[i])}`);
    xs.push(...s.macs);
    traces.push({type: "scatter", mode: "lines", name: `${s.label} (${hv})`, legendgroup: String(s.id),
                 x: s.front.map(p => p[0]), y: s.front.map(p => p[1]), line: {shape: "hv", color, width: 2},
                 hoverinfo: "skip", meta: "front"});
    traces.push({type: "scatter", mode: "markers", name: s.label, legendgroup: String(s.id), showlegend: false,
                 x: s.macs, y: s.value, customdata: s.href, hovertext: texts, hoverinfo: "text", meta: "points",
                 marker: {color, size: s.on_front.map(on => on ? 10 : 6), opacity: 0.85}});
    if (s.teacher) {
      traces.push({type: "scatter", mode: "markers", name: `teacher of search ${s.id}`, legendgroup: String(s.id),
                   x: [s.teacher.macs], y: [s.teacher.value], hoverinfo: "text", meta: "teacher",
                   hovertext: [`<b>teacher of search ${s.id}</b><br>MACs ${ganasCompareNumber(s.teacher.macs)}` +
                               `<br>${data.metric} ${ganasCompareNumber(s.teacher.value)}`],
                   marker: {color, symbol: "diamond-open", size: 13, line: {width: 2}}});
    }
  });
  return {traces, xs};
}

document.addEventListener("DOMContentLoaded", () => {
  const element = document.getElementById("compare-chart"), source = document.getElementById("compare-data");
  if (!element || !source || !window.Plotly) return;
  const data = JSON.parse(source.textContent);
  const {traces, xs} = ganasCompareTraces(data);
  const shapes = [], annotations = [];
  data.searches.forEach((s, k) => {  // each teacher's value as a dotted line: the reference its front aims at
    if (!s.teacher) return;
    shapes.push({type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: s.teacher.value, y1: s.teacher.value,
                 line: {color: GANAS_COLORS[k % GANAS_COLORS.length], dash: "dot", width: 1.2}});
  });
  for (const b of data.budgets) {
    shapes.push({type: "line", xref: "x", yref: "paper", x0: b, x1: b, y0: 0, y1: 1,
                 line: {color: "#9ca3af", dash: "dash", width: 1}});
    annotations.push({xref: "x", yref: "paper", x: b, y: 1, text: `budget ${ganasCompareNumber(b)}`, showarrow: false,
                      textangle: -90, xanchor: "right", yanchor: "top", font: {color: "#6b7280", size: 11}});
  }
  const high = Math.max(...xs.concat(data.budgets)) * 1.05;
  const better = data.direction === "minimize" ? "lower" : "higher";
  Plotly.newPlot(element, traces, {
    margin: {l: 70, r: 20, t: 30, b: 50}, height: 480, hovermode: "closest", legend: {orientation: "h", y: 1.12},
    xaxis: {title: {text: "MACs per image"}, range: [0, high]},
    yaxis: {title: {text: `${data.metric} (${better} is better)`}}, shapes, annotations,
  }, {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"]});
  element.on("plotly_click", event => {
    const link = event.points.length && event.points[0].customdata;
    if (link) window.location.href = link;
  });
  document.getElementById("compare-interactive").hidden = false;
});
