// The report's script (evaluate/report.py inlines it): the table of videos, its sorting and
// filters, the threshold slider, the timeline of the selected video and its player.
// The alarm rule is features/alarms.py's, line for line: runs of frames with
// p(anomaly) >= threshold; runs separated by fewer than merge_gap_s seconds merged; merged
// runs shorter than min_duration_s dropped; frames are native frames at the video's fps.
(function () {
  "use strict";
  const errors = [];
  window.addEventListener("error", (e) => errors.push(String(e.message || e)));
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const ITEMS = JSON.parse(document.getElementById("bokeh-items").textContent);
  const $ = (id) => document.getElementById(id);
  const C = D.classes.length;
  const initial = D.rule.threshold;
  const rule = Object.assign({}, D.rule);

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const f32 = (b64) => new Float32Array(bytes(b64).buffer);

  // ------------------------------------------------------------------ the alarm rule
  function alarmSpans(p, fps, r) {
    fps = fps > 0 ? fps : 1;
    const merged = [];
    let start = -1;
    for (let i = 0; i <= p.length; i++) {
      const above = i < p.length && p[i] >= r.threshold;
      if (above && start < 0) {
        start = i;
      } else if (!above && start >= 0) {
        const last = merged[merged.length - 1];
        if (last && (start - last[1] - 1) / fps < r.merge_gap_s) last[1] = i - 1;
        else merged.push([start, i - 1]);
        start = -1;
      }
    }
    return merged.filter(([a, b]) => (b - a + 1) / fps >= r.min_duration_s);
  }

  const videos = D.videos.map((v) => Object.assign(v, { P: f32(v.p) }));
  const byId = new Map(videos.map((v) => [v.id, v]));

  function judge(v) {
    v.spans = alarmSpans(v.P, v.fps, rule);
    v.alarms = v.spans.length;
    v.hits = v.intervals.map(([a, b]) => v.spans.some(([s, e]) => s <= b && e >= a));
    v.missed = v.hits.filter((h) => !h).length;
    const judged = v.truth !== null && (v.truth === D.normal || v.intervals.length > 0);
    v.falseAlarms = judged ? v.spans.filter(([s, e]) =>
      !v.intervals.some(([a, b]) => s <= b && e >= a)).length : 0;
  }

  function totals() {
    let alarms = 0, fa = 0, faVideos = 0, hit = 0, intervals = 0;
    for (const v of videos) {
      alarms += v.alarms; fa += v.falseAlarms; faVideos += v.falseAlarms > 0 ? 1 : 0;
      hit += v.intervals.length - v.missed; intervals += v.intervals.length;
    }
    return { alarms, falseAlarms: fa, falseAlarmVideos: faVideos, hit, intervals };
  }

  // ----------------------------------------------------------------------- the table
  const state = { sortKey: null, sortDir: 1, current: null, threshold: initial };
  const tbody = document.querySelector("#videos tbody");
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(d));

  function timeOf(v, frame) {
    const t = v.T || (v.T = f32(v.t));
    const b = Math.min(Math.floor(frame / v.k), t.length - 1);
    return t[b] + (frame - b * v.k) / v.fps;
  }

  function intervalsCell(v) {
    if (!v.intervals.length) return v.truth === D.normal ? "" : "<span class=muted>none</span>";
    return v.intervals.map(([a, b], i) =>
      `<span class="${v.hits[i] ? "hit" : "miss"}">${timeOf(v, a).toFixed(1)}&ndash;` +
      `${(timeOf(v, b) + 1 / v.fps).toFixed(1)} s ${v.hits[i] ? "&#10003;" : "&#10007;"}</span>`
    ).join(" ");
  }

  const sortValue = {
    id: (v) => v.id, truth: (v) => v.truth === null ? "" : v.truth, pred: (v) => v.pred,
    peak: (v) => v.peak, mean: (v) => v.mean, alarms: (v) => v.alarms,
    intervals: (v) => v.intervals.length * 1000 - v.missed,
  };

  function shown() {
    const cls = $("f-class").value, truth = $("f-truth").value, pred = $("f-pred").value;
    const onlyFA = $("f-false-alarms").checked, onlyMiss = $("f-misses").checked;
    const text = $("f-text").value.trim().toLowerCase();
    let rows = videos.filter((v) => {
      if (cls && (v.truth === null ? "(unlabelled)" : v.truth) !== cls) return false;
      if (truth === "normal" && v.truth !== D.normal) return false;
      if (truth === "abnormal" && (v.truth === null || v.truth === D.normal)) return false;
      if (truth === "unlabelled" && v.truth !== null) return false;
      if (pred && v.pred !== pred) return false;
      if (onlyFA && v.falseAlarms === 0) return false;
      if (onlyMiss && v.missed === 0) return false;
      return !text || v.id.toLowerCase().includes(text);
    });
    if (state.sortKey) {
      const key = sortValue[state.sortKey], dir = state.sortDir;
      rows = rows.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * dir;
      });
    }
    return rows;
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
      '"': "&quot;", "'": "&#39;" }[c]));
  }

  function renderTable() {
    const rows = shown();
    tbody.innerHTML = rows.map((v) =>
      `<tr data-video="${esc(v.id)}"${v.id === state.current ? ' class="selected"' : ""}>` +
      `<td>${esc(v.id)}</td><td>${v.truth === null ? "<span class=muted>unlabelled</span>" : esc(v.truth)}</td>` +
      `<td>${esc(v.pred)}</td><td class="num">${fmt(v.peak, 3)}</td><td class="num">${fmt(v.mean, 3)}</td>` +
      `<td class="num${v.falseAlarms ? " fa" : ""}">${v.alarms}</td><td>${intervalsCell(v)}</td></tr>`
    ).join("");
    $("n-shown").textContent = rows.length;
  }

  function renderCounts() {
    const t = totals();
    $("n-alarms").textContent = t.alarms;
    $("n-false-alarms").textContent = t.falseAlarms;
    $("n-false-alarm-videos").textContent = t.falseAlarmVideos;
    $("n-hit").textContent = t.hit;
    $("n-intervals").textContent = t.intervals;
    $("threshold-value").textContent = String(rule.threshold);
  }

  function fillSelect(id, values) {
    const sel = $(id);
    for (const value of values) {
      const o = document.createElement("option");
      o.value = value; o.textContent = value;
      sel.appendChild(o);
    }
  }
  const truthClasses = [...new Set(videos.map((v) => v.truth === null ? "(unlabelled)" : v.truth))].sort();
  fillSelect("f-class", truthClasses);
  fillSelect("f-pred", [...new Set(videos.map((v) => v.pred))].sort());
  for (const id of ["f-class", "f-truth", "f-pred", "f-false-alarms", "f-misses", "f-text"]) {
    $(id).addEventListener(id === "f-text" ? "input" : "change", renderTable);
  }
  document.querySelectorAll("#videos thead th").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.key;
    state.sortDir = state.sortKey === key ? -state.sortDir : (key === "id" || key === "truth" || key === "pred" ? 1 : -1);
    state.sortKey = key;
    document.querySelectorAll("#videos thead th").forEach((h) => h.removeAttribute("data-dir"));
    th.dataset.dir = state.sortDir > 0 ? "asc" : "desc";
    renderTable();
  }));
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-video]");
    if (tr) select(tr.dataset.video);
  });

  // -------------------------------------------------------------------- the timeline
  const M = {};                       // the timeline's Bokeh models, once embedded
  const player = $("player");

  function display(v) {
    if (v.D) return v.D;
    const t = v.T || (v.T = f32(v.t));
    const lo = v.k > 1 ? f32(v.lo) : v.P, hi = v.k > 1 ? f32(v.hi) : v.P;
    const cp = bytes(v.cp), n = t.length;
    const cols = {}, top = new Array(n);
    for (let c = 0; c < C; c++) cols["c" + c] = new Float32Array(n);
    for (let b = 0; b < n; b++) {
      const here = [];
      for (let c = 0; c < C; c++) {
        const x = cp[b * C + c] / 255;
        cols["c" + c][b] = x;
        here.push([x, D.classes[c]]);
      }
      here.sort((x, y) => y[0] - x[0]);
      top[b] = here.slice(0, 3).map(([x, name]) => `${name} ${x.toFixed(2)}`).join(", ");
    }
    v.D = { t, lo, hi, top, cols };
    return v.D;
  }

  function boxes(v, spans) {
    return { left: spans.map(([a]) => timeOf(v, a)), right: spans.map(([, b]) => timeOf(v, b) + 1 / v.fps) };
  }

  function drawAlarms() {
    const v = byId.get(state.current);
    if (!v || !M.alarms) return;
    M.alarms.data = boxes(v, v.spans);
  }

  function select(id) {
    const v = byId.get(id);
    if (!v) return;
    state.current = id;
    tbody.querySelectorAll("tr.selected").forEach((tr) => tr.classList.remove("selected"));
    const tr = tbody.querySelector(`tr[data-video="${CSS.escape(id)}"]`);
    if (tr) tr.classList.add("selected");
    $("video-title").textContent = `${v.id}: ${v.truth === null ? "unlabelled" : v.truth}, ` +
      `predicted ${v.pred}, peak ${fmt(v.peak, 3)}`;
    $("video-pane").dataset.video = id;
    if (M.curve) {
      const d = display(v);
      const end = timeOf(v, v.n - 1) + 1 / v.fps;
      M.x_range.setv({ start: Math.min(0, d.t[0]), end: end });
      M.curve.data = { t: d.t, lo: d.lo, hi: d.hi, top: d.top };
      M.classes.data = Object.assign({ t: d.t }, d.cols);
      M.truth.data = boxes(v, v.intervals);
      M.timeline.title.text = v.id;
      drawAlarms();
      setCursor(-1);
    }
    if (v.source) {
      $("player-box").hidden = false;
      if (player.getAttribute("src") !== v.source) player.setAttribute("src", v.source);
      $("player-note").textContent = "";
    } else {
      $("player-box").hidden = true;
      player.removeAttribute("src");
      $("player-note").textContent = "source video not reachable from the report's folder" +
        (document.body.dataset.sourceNote ? ": " + document.body.dataset.sourceNote : "");
    }
    const thumbs = $("thumbs");
    thumbs.innerHTML = v.thumbs.map((th) =>
      `<figure class="thumb ${th.kind}" data-t="${th.t}"><img alt="${th.kind} at ${th.t.toFixed(2)} s" ` +
      `src="data:image/jpeg;base64,${th.jpg}"><figcaption>${th.kind === "alarm" ? "alarm peak" : "missed, middle"} ` +
      `${th.t.toFixed(1)} s</figcaption></figure>`).join("");
  }

  function setCursor(t) {
    if (M.cursor) M.cursor.location = t;
    if (M.cursor2) M.cursor2.location = t;
  }

  function seek(t) {
    t = Math.max(0, Number(t));
    setCursor(t);
    const v = byId.get(state.current);
    if (v && v.source) player.currentTime = t;
  }

  let raf = 0;
  function follow() {
    setCursor(player.currentTime);
    raf = player.paused ? 0 : requestAnimationFrame(follow);
  }
  for (const ev of ["timeupdate", "seeked"]) player.addEventListener(ev, () => setCursor(player.currentTime));
  player.addEventListener("play", () => { if (!raf) raf = requestAnimationFrame(follow); });

  thumbsClick($("thumbs"));
  function thumbsClick(el) {
    el.addEventListener("click", (e) => {
      const f = e.target.closest("figure[data-t]");
      if (f) seek(parseFloat(f.dataset.t));
    });
  }
  document.querySelectorAll("a.jump[data-video]").forEach((a) => a.addEventListener("click", (e) => {
    e.preventDefault();
    select(a.dataset.video);
    if (a.dataset.t) seek(parseFloat(a.dataset.t));
    $("video-pane").scrollIntoView({ block: "nearest" });
  }));

  // ---------------------------------------------------------------------- threshold
  function setThreshold(x) {
    rule.threshold = Number(x);
    state.threshold = rule.threshold;
    videos.forEach(judge);
    if (M.threshold) M.threshold.location = rule.threshold;
    drawAlarms();
    renderCounts();
    renderTable();
  }
  $("threshold").addEventListener("input", (e) => setThreshold(parseFloat(e.target.value)));
  $("threshold-reset").addEventListener("click", () => {
    $("threshold").value = String(initial);
    setThreshold(initial);
  });

  setThreshold(initial);

  // ------------------------------------------------------------------- Bokeh embeds
  function find(name) {
    for (const doc of Bokeh.documents) {
      const m = doc.get_model_by_name(name);
      if (m) return m;
    }
    return null;
  }
  const embeds = [];
  if (ITEMS.overview && $("overview-plot")) embeds.push(Bokeh.embed.embed_item(ITEMS.overview, "overview-plot"));
  const timeline = Bokeh.embed.embed_item(ITEMS.timeline, "timeline-plot").then(() => {
    for (const name of ["curve", "classes", "truth", "alarms", "threshold", "cursor", "cursor2",
                        "x_range", "timeline"]) M[name] = find(name);
    M.threshold.location = rule.threshold;
    if (state.current) select(state.current);
  });
  embeds.push(timeline);

  window.vadReport = {
    ready: false, errors, state, videos, select, seek, setThreshold, totals, alarmSpans,
    models: M, shownIds: () => Array.from(tbody.querySelectorAll("tr")).map((tr) => tr.dataset.video),
  };
  Promise.all(embeds).then(() => { window.vadReport.ready = true; },
                           (err) => { errors.push(String(err)); window.vadReport.ready = true; });
})();
