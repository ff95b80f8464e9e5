// ganas dashboard: the interactive Pareto front (plotly.js, served by this server) over the page's JSON.
// Without JavaScript the page keeps its server-drawn SVG; with it, this chart replaces the SVG.
"use strict";

const GANAS_STATUS_STYLE = {  // how each finished status is drawn
  member: {name: "Pareto front", color: "#c2410c", symbol: "circle", size: 11},
  done: {name: "done", color: "#9ca3af", symbol: "circle", size: 7},
  failed: {name: "failed (no value)", color: "#b91c1c", symbol: "x", size: 9},
  infeasible: {name: "infeasible (over budget)", color: "#6b7280", symbol: "triangle-down", size: 9},
};

function ganasFormat(value, digits) {
  if (value === null || value === undefined) return "–";
  const a = Math.abs(value);
  for (const [scale, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (a >= scale) return (value / scale).toPrecision(3).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "") + unit;
  }
  return Number(value).toPrecision(digits || 4).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

function ganasTimes(ratio) {  // as the tables write ratios: 1.5×, 33.3×, 2,840×
  if (ratio >= 100) return `${Math.round(ratio).toLocaleString("en-US")}×`;
  return `${Number(ratio.toPrecision(3))}×`;
}

function ganasValue(data, key, i) {  // a point's value on an axis (null when it has none)
  const c = data.columns;
  if (key.startsWith("metric:")) return c.metrics[key.slice(7)] ? c.metrics[key.slice(7)][i] : null;
  return c[key][i];
}

function ganasTeacherValue(data, key) {
  const t = data.teacher;
  if (!t) return null;
  if (key.startsWith("metric:")) return t.metrics[key.slice(7)] ?? null;
  return t[key] ?? null;
}

function ganasHover(data, i) {  // config, cost, metrics and their ratios to the teacher
  const c = data.columns, t = data.teacher, lines = [`<b>${c.config[i]}</b> (${c.status[i]}${c.on_front[i] ? ", on the front" : ""})`];
  const fewer = (tv, v, what) => (t && tv && v) ? ` (${ganasTimes(tv / v)} ${what || "fewer"} than the teacher)` : "";
  lines.push(`MACs ${ganasFormat(c.macs[i])}${fewer(t && t.macs, c.macs[i])}`);
  lines.push(`params ${c.params[i].toLocaleString("en-US")}${fewer(t && t.params, c.params[i])}`);
  if (c.latency_ms[i] !== null) lines.push(`latency ${c.latency_ms[i].toFixed(2)} ms${fewer(t && t.latency_ms, c.latency_ms[i], "faster")}`);
  for (const [name, values] of Object.entries(c.metrics)) {
    if (values[i] === null || values[i] === undefined) continue;
    const tv = t ? t.metrics[name] : undefined;
    const ratio = (tv !== undefined && tv !== 0) ? ` (${ganasTimes(values[i] / tv)} the teacher's ${ganasFormat(tv)})` : "";
    lines.push(`${name} ${ganasFormat(values[i])}${ratio}`);
  }
  if (c.error[i]) lines.push(`<i>${c.error[i].replace(/</g, "&lt;").slice(0, 120)}</i>`);
  return lines.join("<br>");
}

function ganasTraces(data, xKey, yKey) {
  const groups = {member: [], done: [], failed: [], infeasible: []};
  const n = data.columns.config.length;
  for (let i = 0; i < n; i++) {
    const status = data.columns.status[i];
    groups[status === "done" && data.columns.on_front[i] ? "member" : status].push(i);
  }
  const traces = [];
  let missing = 0;
  for (const [group, indices] of Object.entries(groups)) {
    const style = GANAS_STATUS_STYLE[group], xs = [], ys = [], texts = [], links = [], strip = [];
    for (const i of indices) {
      const x = ganasValue(data, xKey, i), y = ganasValue(data, yKey, i);
      if (x === null || x === undefined) { missing++; continue; }
      const onStrip = y === null || y === undefined;  // failed / infeasible: no metric, drawn below the chart
      if (onStrip && group !== "failed" && group !== "infeasible") { missing++; continue; }
      xs.push(x); ys.push(onStrip ? 0 : y); strip.push(onStrip);
      texts.push(ganasHover(data, i)); links.push(data.candidates_url + encodeURIComponent(data.columns.config[i]));
    }
    if (!xs.length) continue;
    const onStrip = strip.every(Boolean);
    traces.push({type: n > 4000 ? "scattergl" : "scatter", mode: "markers", name: `${style.name} (${xs.length})`, x: xs, y: ys,
                 yaxis: onStrip ? "y2" : "y", customdata: links, hovertext: texts, hoverinfo: "text",
                 meta: group, marker: {color: style.color, symbol: style.symbol, size: style.size,
                                       line: {color: "#fff", width: group === "member" ? 1 : 0}}});
  }
  return {traces, missing};
}

function ganasDraw(element, data, xKey, yKey, log) {
  const {traces, missing} = ganasTraces(data, xKey, yKey);
  const axis = key => data.axes.find(a => a.key === key);
  const shapes = [], annotations = [];
  if (xKey === "macs") {
    for (const b of data.budgets) {
      shapes.push({type: "line", xref: "x", yref: "paper", x0: b, x1: b, y0: 0.12, y1: 1,
                   line: {color: "#2563eb", dash: "dash", width: 1.2}});
      annotations.push({xref: "x", yref: "paper", x: b, y: 1, text: `budget ${ganasFormat(b)}`, showarrow: false,
                        textangle: -90, xanchor: "right", yanchor: "top", font: {color: "#2563eb", size: 11}});
    }
  }
  const ty = ganasTeacherValue(data, yKey), tx = ganasTeacherValue(data, xKey);
  if (ty !== null) {
    shapes.push({type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: ty, y1: ty,
                 line: {color: "#15803d", dash: "dot", width: 1.5}});
    annotations.push({xref: "paper", yref: "y", x: 1, y: ty, showarrow: false, xanchor: "right", yanchor: "bottom",
                      text: `teacher: ${axis(yKey).label.split(" (")[0]} ${ganasFormat(ty)}` +
                            (tx !== null ? ` at ${ganasFormat(tx)} ${axis(xKey).label.split(" (")[0]}` : ""),
                      font: {color: "#15803d", size: 11}});
  }
  if (tx !== null && ty !== null) {
    traces.push({type: "scatter", mode: "markers", name: "teacher", x: [tx], y: [ty], hoverinfo: "text",
                 hovertext: [`<b>teacher</b><br>${axis(xKey).label} ${ganasFormat(tx)}<br>${axis(yKey).label} ${ganasFormat(ty)}`],
                 marker: {color: "#15803d", symbol: "diamond", size: 12}, meta: "teacher"});
  }
  const front = traces.find(t => t.meta === "member");
  if (front && xKey === "macs" && yKey === data.y) {  // the step line: best value within any MACs budget
    const order = front.x.map((x, k) => k).sort((a, b) => front.x[a] - front.x[b]);
    traces.unshift({type: "scatter", mode: "lines", name: "front", x: order.map(k => front.x[k]),
                    y: order.map(k => front.y[k]), line: {shape: "hv", color: "#c2410c", width: 2},
                    hoverinfo: "skip", showlegend: false, meta: "step"});
  }
  const hasStrip = traces.some(t => t.yaxis === "y2");
  // the candidates (and budgets) set the x range; a teacher far to the right stays a labelled line, as on the SVG
  const xs = traces.filter(t => t.meta !== "teacher").flatMap(t => t.x).concat(xKey === "macs" ? data.budgets : []);
  const xHigh = Math.max(...xs) * 1.05, xLow = Math.min(...xs);
  const layout = {
    margin: {l: 70, r: 20, t: 30, b: 50}, height: 460, hovermode: "closest", dragmode: "zoom",
    legend: {orientation: "h", y: 1.1},
    xaxis: {title: {text: axis(xKey).label}, type: log ? "log" : "linear", zeroline: false,
            range: log ? [Math.log10(xLow / 1.2), Math.log10(xHigh)] : [0, xHigh]},
    yaxis: {title: {text: axis(yKey).label}, domain: hasStrip ? [0.14, 1] : [0, 1]},
    yaxis2: {domain: [0, 0.07], visible: hasStrip, showticklabels: false, title: {text: "no value", font: {size: 10}},
             fixedrange: true, zeroline: false, showgrid: false},
    shapes, annotations,
  };
  Plotly.react(element, traces, layout, {displaylogo: false, responsive: true,
                                         modeBarButtonsToRemove: ["select2d", "lasso2d"]});
  const note = document.getElementById("front-chart-note");
  if (note) note.textContent = missing ? `${missing} finished candidates have no value on these axes and are not shown.` : "";
}

function ganasFrontChart(element, data, controls) {
  ganasDraw(element, data, controls.x.value, controls.y.value, controls.log.checked);
  if (!element.classList.contains("ready")) {  // element.on exists once plotly has drawn
    element.classList.add("ready");
    element.on("plotly_click", event => {
      const link = event.points.length && event.points[0].customdata;
      if (link) window.location.href = link;
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const element = document.getElementById("front-chart"), source = document.getElementById("front-data");
  if (!element || !source || !window.Plotly) return;  // the SVG stays
  const data = JSON.parse(source.textContent);
  const controls = {x: document.getElementById("front-x"), y: document.getElementById("front-y"),
                    log: document.getElementById("front-log")};
  // a running search's page reloads itself every few seconds: keep the chosen axes across reloads
  const key = `ganas-front-${data.search_id}`, kept = JSON.parse(sessionStorage.getItem(key) || "{}");
  const has = axisKey => data.axes.some(a => a.key === axisKey);
  for (const [select, chosen] of [[controls.x, has(kept.x) ? kept.x : data.x], [controls.y, has(kept.y) ? kept.y : data.y]]) {
    for (const a of data.axes) select.add(new Option(a.label, a.key, false, a.key === chosen));
  }
  controls.log.checked = Boolean(kept.log);
  document.getElementById("front-interactive").hidden = false;
  document.getElementById("front-static").hidden = true;
  const redraw = () => {
    sessionStorage.setItem(key, JSON.stringify({x: controls.x.value, y: controls.y.value, log: controls.log.checked}));
    ganasFrontChart(element, data, controls);
  };
  for (const control of Object.values(controls)) control.addEventListener("change", redraw);
  redraw();
});
