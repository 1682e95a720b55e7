"""The report: one self-contained interactive HTML page per scoring, ``report.html``.

Every scoring writes it beside its other files; ``pipeline report SCORES_DIR [--out FILE]``
renders it again from a scoring folder's files (``frame_scores.parquet``, ``videos.csv``,
``metrics.json``, and ``alarms.csv`` / the detection keys of ``metrics.json`` where the
scoring has them). The page needs nothing but itself: the plotting library (BokehJS, from
the installed ``bokeh`` package), the styles, the script and the data are inline, so it
opens from disk on a machine with no network and asks no host for anything.

What it shows: a header (run, feature file, split, the metric suite, ROC and PR curves, the
per-class table), the table of videos (sortable, filterable), the timeline of the video
clicked (p(anomaly), its classes stacked, annotated intervals shaded, alarms boxed, the
threshold as a line with a slider that recomputes the alarms in the page with the rule of
``features/alarms.py``), the source video beside it when it can be reached from the
report's folder (a relative path, in sync both ways), thumbnails at each alarm's peak and
each missed interval's middle, and the worst cases.

Sizes (``bench/report.py``): each video's curve is reduced for display to at most
``DISPLAY_BUCKETS`` buckets, each drawn as its min and max (every peak is kept); the class
probabilities are bucket means in 1/255 steps. Every frame's p(anomaly) is embedded as
float32 (what the parquet holds), because the slider's alarms must be exactly Python's.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from features import __version__
from features import metrics as M
from features.alarms import DEFAULT_THRESHOLD, AlarmRule, find_alarms
from features.errors import UserError
from features.safe_write import atomic_write
from features.schema import NORMAL_CLASS

from . import tables
from .summary import prob_column

log = logging.getLogger("pipeline")

REPORT = "report.html"
TEMPLATES = Path(__file__).with_name("templates")
DISPLAY_BUCKETS = 500          # per video curve: at most this many (min, max) pairs
CURVE_POINTS = 800             # ROC / PR points drawn
THUMB_WIDTH = 160              # pixels; JPEG
MAX_THUMBS_PER_VIDEO = 4       # missed intervals first, then alarms by peak
WORST = 10                     # entries per list of worst cases
ALARMS_CSV = "alarms.csv"      # written by the decisions stage where it runs


# ------------------------------------------------------------------------- reduction
def envelope(p: np.ndarray, buckets: int = DISPLAY_BUCKETS):
    """(k, starts, lo, hi): ``p`` cut into runs of k frames (the last may be shorter), at most
    ``buckets`` of them, with each run's min and max: drawing both keeps every peak."""
    p = np.asarray(p, dtype=np.float32)
    n = len(p)
    k = max(1, math.ceil(n / buckets))
    starts = np.arange(0, n, k)
    if k == 1:
        return 1, starts, p, p
    return k, starts, np.minimum.reduceat(p, starts), np.maximum.reduceat(p, starts)


def bucket_means(x: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Mean of the rows of ``x`` (F, ...) over each bucket [starts[i], starts[i+1])."""
    counts = np.diff(np.r_[starts, n]).reshape(-1, *([1] * (x.ndim - 1)))
    return np.add.reduceat(x.astype(np.float64), starts, axis=0) / counts


def script_json(obj) -> str:
    """JSON to put inside a <script> element: keys kept in order (BokehJS reads a document's
    models in the order they are written), and <, >, & escaped so no "</script>" can end it."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def thin_curve(x: np.ndarray, y: np.ndarray, keep: int = CURVE_POINTS, also=()):
    """At most ~``keep`` points of a long curve, its ends and the indices ``also`` kept."""
    n = len(x)
    if n <= keep:
        return x, y
    idx = np.unique(np.r_[np.linspace(0, n - 1, keep).astype(np.int64), n - 1,
                          np.asarray(list(also), dtype=np.int64)])
    return x[idx], y[idx]


# ----------------------------------------------------------------------------- inputs
@dataclass
class Video:
    video_id: str
    class_name: str | None           # truth; None when unlabelled
    pred_class: str
    fps: float
    n_frames: int
    peak: float
    mean: float
    intervals: list[tuple[int, int]]  # annotated, inclusive native frames
    p: np.ndarray                      # (F,) float32
    times: np.ndarray                  # (F,) seconds
    probs: np.ndarray                  # (F, C_anomaly) float32
    source: str | None = None          # relative URL from the report's folder
    thumbs: list[dict] = field(default_factory=list)


def _intervals(text) -> list[tuple[int, int]]:
    if not isinstance(text, str) or not text.strip():
        return []
    out = []
    for part in text.split(";"):
        a, _, b = part.partition("-")
        out.append((int(a), int(b)))
    return out


def alarm_rule(body: dict) -> tuple[AlarmRule, str]:
    """The rule the scoring's alarms follow: ``alarm_rule`` of metrics.json when the scoring
    wrote one, else the default rule at its ``threshold``; and where it came from."""
    rule = body.get("alarm_rule")
    if isinstance(rule, dict) and "threshold" in rule:
        defaults = AlarmRule()
        return (AlarmRule(float(rule["threshold"]),
                          float(rule.get("merge_gap_s", defaults.merge_gap_s)),
                          float(rule.get("min_duration_s", defaults.min_duration_s))),
                str(rule.get("source") or "metrics.json alarm_rule"))
    threshold = body.get("threshold")
    threshold = float(threshold) if isinstance(threshold, (int, float)) else DEFAULT_THRESHOLD
    return AlarmRule(threshold), "the scoring's threshold, default merge and duration"


def _read_body(folder: Path) -> dict:
    path = folder / tables.METRICS
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; {folder} is not a scoring folder (pass the "
                        "folder `pipeline score` wrote, e.g. pipeline_out/scores/test)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot be read ({err}); score again to rewrite it") from None
    if not isinstance(body, dict):
        raise UserError(f"{path}: is not a scoring's metrics.json; score again to rewrite it")
    return body


def _read_frames(folder: Path) -> pd.DataFrame:
    path = folder / tables.TABLE
    if not path.is_file():
        raise UserError(f"{path}: no such file; score again (`pipeline score`) to write it")
    try:
        return pd.read_parquet(path)
    except Exception as err:                         # pyarrow raises many kinds
        raise UserError(f"{path}: cannot be read ({err}); score again to rewrite it") from None


def _read_config(body: dict) -> dict:
    """The scoring run's config.json (train/rundir.py), or {} when it cannot be read."""
    run = body.get("run")
    if not run:
        return {}
    from train.rundir import read_config

    try:
        return read_config(run)
    except (OSError, UserError):
        return {}


def _class_names(frames: pd.DataFrame, config: dict) -> list[str]:
    names = config.get("class_names")
    if names and all(prob_column(c) in frames.columns for c in names):
        return list(names)
    return [c[2:] for c in frames.columns if c.startswith("p_") and c != "p_anomaly"]


def _videos(frames: pd.DataFrame, table: pd.DataFrame, anomaly: list[str]) -> list[Video]:
    ids = frames["video_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    bounds = dict(zip(ids[starts], zip(starts, np.r_[starts[1:], len(ids)])))
    p_all = frames["p_anomaly"].to_numpy(np.float32)
    t_all = frames["time_s"].to_numpy(np.float64)
    probs_all = frames[[prob_column(c) for c in anomaly]].to_numpy(np.float32)
    rows = table.set_index("video_id") if len(table) else None
    out = []
    for vid, (a, b) in bounds.items():
        row = rows.loc[vid] if rows is not None and vid in rows.index else None
        p = p_all[a:b]
        fps = float(row["fps"]) if row is not None and row["fps"] > 0 else 1.0
        truth = row["class_name"] if row is not None else None
        out.append(Video(
            vid, truth if isinstance(truth, str) else None,
            str(row["pred_class"]) if row is not None else "?", fps, len(p),
            float(p.max(initial=0)), float(p.mean()) if len(p) else 0.0,
            _intervals(row["truth_intervals"]) if row is not None else [],
            p, t_all[a:b], probs_all[a:b]))
    return out


# --------------------------------------------------------------------- source videos
def _source_files(body: dict, videos: list[Video]) -> tuple[dict[str, Path], str | None]:
    """{video_id: source file} as the scoring's feature file records them, and a note when
    the feature file cannot be read."""
    if body.get("video"):                              # a single video's scoring
        return {v.video_id: Path(body["video"]) for v in videos}, None
    features = body.get("features")
    if not features:
        return {}, "the scoring names no feature file, so the source videos are unknown"
    path = Path(features)
    if not path.is_file():
        return {}, f"feature file {features} not found from here: no source videos"
    from features.labels import video_source
    from features.store import open_store

    found = {}
    try:
        with open_store(path) as store:
            have = set(store.video_ids)
            for v in videos:
                if v.video_id in have:
                    src = video_source(store.video_attrs(v.video_id))
                    if src:
                        found[v.video_id] = Path(src)
    except (OSError, UserError) as err:
        return {}, f"feature file {features} cannot be read ({err}): no source videos"
    return found, None


def _relative_url(source: Path, report_dir: Path) -> str:
    rel = os.path.relpath(source.resolve(), report_dir.resolve())
    return quote(Path(rel).as_posix())


# ------------------------------------------------------------------------- thumbnails
def _frame_at(v: Video, frame: int) -> float:
    frame = int(min(max(frame, 0), v.n_frames - 1))
    return float(v.times[frame]) if len(v.times) else frame / v.fps


def _thumb_jobs(v: Video, spans: list[tuple[int, int]]) -> list[dict]:
    """Where to take the thumbnails of one video: the middle of each annotated interval no
    alarm overlaps, then each alarm's peak (highest first), at most MAX_THUMBS_PER_VIDEO."""
    jobs = []
    for a, b in v.intervals:
        if not any(s <= b and e >= a for s, e in spans):
            jobs.append({"kind": "missed", "frame": (a + b) // 2})
    peaks = sorted(spans, key=lambda se: -float(v.p[se[0]:se[1] + 1].max()))
    for s, e in peaks:
        jobs.append({"kind": "alarm", "frame": s + int(np.argmax(v.p[s:e + 1]))})
    jobs = jobs[:MAX_THUMBS_PER_VIDEO]
    for job in jobs:
        job["t"] = _frame_at(v, job["frame"])
    return jobs


def take_thumbnail(source: Path, t: float, fps: float) -> bytes | None:
    """A JPEG THUMB_WIDTH wide of the frame shown at ``t`` seconds of ``source`` (ffmpeg,
    accurate seek), or None when ffmpeg cannot take it."""
    from extract import ffmpeg_exe

    at = max(0.0, t - 0.25 / max(fps, 1e-6))          # the first frame at or after it
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-ss", f"{at:.6f}", "-i", str(source),
           "-frames:v", "1", "-vf", f"scale={THUMB_WIDTH}:-2", "-q:v", "6", "-f", "image2pipe",
           "-c:v", "mjpeg", "pipe:"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 and done.stdout[:2] == b"\xff\xd8" else None


def _take_thumbnails(videos: list[Video], sources: dict[str, Path],
                     spans: dict[str, list[tuple[int, int]]]) -> int:
    work = []
    for v in videos:
        if v.video_id in sources and v.source is not None:
            for job in _thumb_jobs(v, spans[v.video_id]):
                work.append((v, job))
    if not work:
        return 0

    def one(item):
        v, job = item
        return item, take_thumbnail(sources[v.video_id], job["t"], v.fps)

    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        for (v, job), jpeg in pool.map(one, work):
            if jpeg:
                v.thumbs.append({**job, "jpg": base64.b64encode(jpeg).decode("ascii")})
    return sum(len(v.thumbs) for v in videos)


# -------------------------------------------------------------------------- figures
def _overview_item(frames: pd.DataFrame, metrics: dict | None):
    """Bokeh json_item of the ROC and PR curves of all labelled frames, or None."""
    if not metrics or "label" not in frames.columns:
        return None
    known = frames["label"].notna().to_numpy()
    y = frames["label"].to_numpy()[known].astype(int)
    if not (0 < y.sum() < len(y)):
        return None
    from bokeh.embed import json_item
    from bokeh.layouts import row
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    s = frames["p_anomaly"].to_numpy(np.float64)[known]
    fpr, tpr, thr = M.roc_curve(y, s)
    precision, recall, _ = M.pr_curve(y, s)
    j = int(np.argmax(tpr - fpr))
    fx, fy = thin_curve(fpr, tpr, also=[j])
    rx, ry = thin_curve(recall, precision)
    common = dict(width=380, height=330, x_range=(0, 1), y_range=(0, 1.01),
                  tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above")
    roc = figure(title=f"ROC (frames): AUC {_fmt(metrics.get('auc'))}",
                 x_axis_label="false positive rate", y_axis_label="true positive rate", **common)
    roc.line([0, 1], [0, 1], color="#999999", line_dash="dotted")
    line = roc.line(fx, fy, color="#1f4e9c", line_width=2)
    roc.scatter([fpr[j]], [tpr[j]], size=8, color="#c0392b",
                legend_label=f"Youden {thr[j]:.3f}")
    roc.legend.location = "bottom_right"
    roc.add_tools(HoverTool(renderers=[line], tooltips=[("FPR", "@x{0.000}"),
                                                        ("TPR", "@y{0.000}")]))
    pr = figure(title=f"precision-recall (frames): AP {_fmt(metrics.get('ap'))}",
                x_axis_label="recall", y_axis_label="precision", **common)
    pr.line([0, 1], [y.mean()] * 2, color="#999999", line_dash="dotted",
            legend_label="chance")
    step = pr.step(rx, ry, mode="after", color="#1f4e9c", line_width=2)
    pr.legend.location = "bottom_left"
    pr.add_tools(HoverTool(renderers=[step], tooltips=[("recall", "@x{0.000}"),
                                                       ("precision", "@y{0.000}")]))
    for fig in (roc, pr):
        fig.toolbar.logo = None
    return json_item(row(roc, pr))


def _timeline_item(anomaly: list[str], colors: dict[str, str], threshold: float):
    """Bokeh json_item of the empty timeline (the page fills its sources per video)."""
    from bokeh.embed import json_item
    from bokeh.layouts import column
    from bokeh.models import (ColumnDataSource, CustomJS, HoverTool, Legend, LegendItem,
                              Range1d, Span)
    from bokeh.plotting import figure

    x_range = Range1d(0, 1, name="x_range")
    curve = ColumnDataSource({"t": [], "lo": [], "hi": [], "top": []}, name="curve")
    keys = [f"c{k}" for k in range(len(anomaly))]
    classes = ColumnDataSource({"t": [], **{c: [] for c in keys}}, name="classes")
    truth = ColumnDataSource({"left": [], "right": []}, name="truth")
    alarms = ColumnDataSource({"left": [], "right": []}, name="alarms")
    tl = figure(name="timeline", title="click a video in the table", height=260,
                sizing_mode="stretch_width", x_range=x_range, y_range=(0, 1.04),
                y_axis_label="p(anomaly)", tools="xpan,xwheel_zoom,reset,save",
                toolbar_location="above")
    shade = tl.quad(left="left", right="right", bottom=0, top=1.04, source=truth,
                    color="#f2b134", alpha=0.3, line_alpha=0)
    tl.varea(x="t", y1="lo", y2="hi", source=curve, color="#1f4e9c", alpha=0.3)
    line = tl.line("t", "hi", source=curve, color="#1f4e9c", line_width=1.6)
    boxed = tl.quad(left="left", right="right", bottom=0.005, top=1.03, source=alarms,
                    fill_alpha=0.06, fill_color="#c0392b", line_color="#c0392b", line_width=2)
    threshold_line = Span(name="threshold", location=threshold, dimension="width",
                          line_color="#c0392b", line_dash="dashed", line_width=1.5)
    tl.add_layout(threshold_line)
    tl.add_layout(Span(name="cursor", location=-1, dimension="height", line_color="#111111",
                       line_width=1.5))
    tl.add_layout(Legend(items=[LegendItem(label="p(anomaly)", renderers=[line]),
                                LegendItem(label="annotated interval", renderers=[shade]),
                                LegendItem(label="alarm", renderers=[boxed])],
                         orientation="horizontal", location="top_left", border_line_alpha=0,
                         label_text_font_size="9pt", padding=2, margin=2), "above")
    tl.add_tools(HoverTool(renderers=[line], mode="vline", tooltips=[
        ("time", "@t{0.00} s"), ("p(anomaly)", "@hi{0.000}"), ("top classes", "@top")]))
    tl.js_on_event("tap", CustomJS(code="window.vadReport && window.vadReport.seek(cb_obj.x)"))
    strip = figure(name="strip", height=170, sizing_mode="stretch_width", x_range=x_range,
                   y_range=(0, 1.04), y_axis_label="P(class)", tools="", toolbar_location=None,
                   x_axis_label="time (s)")
    items = []
    if keys:
        areas = strip.varea_stack(stackers=keys, x="t", source=classes,
                                  color=[colors[c] for c in anomaly], alpha=0.85)
        items = [LegendItem(label=name, renderers=[r]) for name, r in zip(anomaly, areas)]
    strip.add_layout(Span(name="cursor2", location=-1, dimension="height",
                          line_color="#111111", line_width=1.5))
    strip.js_on_event("tap", CustomJS(code="window.vadReport && window.vadReport.seek(cb_obj.x)"))
    if items:
        strip.add_layout(Legend(items=items, orientation="horizontal", location="top_left",
                                border_line_alpha=0, label_text_font_size="9pt", padding=2,
                                margin=2), "above")
    for fig in (tl, strip):
        fig.toolbar.logo = None
    return json_item(column(tl, strip, sizing_mode="stretch_width"))


def _bokeh_js() -> str:
    from bokeh.resources import Resources

    return "\n".join(Resources(mode="inline", components=["bokeh"]).js_raw)


# ------------------------------------------------------------------------ the lists
def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _worst(videos: list[Video], normal_class: str) -> dict:
    normals = sorted((v for v in videos if v.class_name == normal_class),
                     key=lambda v: -v.peak)[:WORST]
    intervals = []
    for v in videos:
        for a, b in v.intervals:
            seg = v.p[a:b + 1]
            if len(seg):
                intervals.append({"video": v.video_id, "start": _frame_at(v, a),
                                  "end": _frame_at(v, b) + 1 / v.fps, "peak": float(seg.max()),
                                  "mean": float(seg.mean()), "class_name": v.class_name})
    intervals.sort(key=lambda d: d["peak"])
    pairs: dict[tuple[str, str], list[str]] = {}
    for v in videos:
        if v.class_name is not None and v.pred_class != v.class_name:
            pairs.setdefault((v.class_name, v.pred_class), []).append(v.video_id)
    confused = sorted(pairs.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:WORST]
    return {"normals": [{"video": v.video_id, "peak": v.peak, "mean": v.mean}
                        for v in normals],
            "intervals": intervals[:WORST],
            "confused": [{"truth": t, "pred": p, "n": len(ids), "videos": ids}
                         for (t, p), ids in confused]}


METRIC_ROWS = [(key, label) for key, label in tables.METRIC_LINES]


def _metric_rows(metrics: dict | None) -> list[tuple[str, str]]:
    if not metrics:
        return []
    rows = [(label, _fmt(metrics.get(key))) for key, label in METRIC_ROWS if key in metrics]
    rows.insert(0, ("videos / frames", f"{metrics.get('n_videos', '?')} "
                    f"({metrics.get('n_abnormal_videos', '?')} abnormal) / "
                    f"{_fmt(metrics.get('n_frames'))} ({_fmt(metrics.get('n_anomalous_frames'))}"
                    " anomalous)"))
    return rows


def _detection_rows(body: dict) -> list[tuple[str, str]]:
    """The detection mAP (VadCLIP's and ActivityNet's IoU grids) where the scoring has it."""
    detection = body.get("detection")
    rows = []
    if isinstance(detection, dict):
        for name, part in detection.items():
            if not isinstance(part, dict):
                continue
            ious, maps = part.get("iou") or [], part.get("map") or []
            grid = ", ".join(f"{_fmt(i, 2)}: {_fmt(m, 3)}" for i, m in zip(ious, maps))
            rows.append((f"detection mAP ({name})", f"{_fmt(part.get('avg'))}"
                         + (f"  (IoU {grid})" if grid else "")))
    return rows


def _flat(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flat(f"{prefix} {k}".strip(), v)]
    if isinstance(value, list):
        return [(prefix, ", ".join(_fmt(v) for v in value))]
    return [(prefix, _fmt(value))]


def _check_alarms_csv(folder: Path, spans: dict[str, list]) -> str | None:
    """A note when the scoring's alarms.csv (where it writes one) does not list the alarms
    the rule gives on its frames; None when it agrees or is absent."""
    path = folder / ALARMS_CSV
    if not path.is_file():
        return None
    try:
        listed = pd.read_csv(path)["video_id"].astype(str).value_counts().to_dict()
    except (OSError, ValueError, KeyError, pd.errors.ParserError):
        return f"{ALARMS_CSV} cannot be read: the alarms shown are the rule's on the frames"
    ours = {vid: len(s) for vid, s in spans.items() if s}
    if listed != ours:
        return (f"{ALARMS_CSV} lists {sum(listed.values())} alarms, the alarm rule gives "
                f"{sum(ours.values())} on frame_scores.parquet: the page shows the rule's")
    return None


# --------------------------------------------------------------------------- render
@dataclass
class Report:
    path: Path
    bytes: int
    videos: int
    thumbnails: int
    seconds: float
    sources: int                  # videos whose source file the page can play


def _scoring(folder: Path, body: dict | None, frames: pd.DataFrame | None,
             videos_table: pd.DataFrame | None):
    """(metrics.json body, when it was scored, frame table, videos table): those the caller
    has in memory, the others read from ``folder``."""
    if body is None:
        body = _read_body(folder)
        scored = _utc(os.stat(folder / tables.METRICS).st_mtime)
    else:
        scored = _utc(time.time())
    frames = _read_frames(folder) if frames is None else frames
    if videos_table is None:
        path = folder / tables.VIDEOS
        videos_table = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    return body, scored, frames, videos_table


def _attach_sources(body: dict, videos: list, report_dir: Path):
    """Set each video's player link (relative to ``report_dir``) where its source file is
    there; (the source files by video id, the note on where they came from or are
    missing)."""
    sources, source_note = _source_files(body, videos)
    missing = []
    for v in videos:
        src = sources.get(v.video_id)
        if src is not None and src.is_file():
            v.source = _relative_url(src, report_dir)
        elif src is not None:
            missing.append(str(src))
    if missing:
        source_note = (f"{len(missing)} source video(s) not found (e.g. {missing[0]}): "
                       "those have no player")
    return sources, source_note


def render(folder, out=None, *, body: dict | None = None, frames: pd.DataFrame | None = None,
           videos_table: pd.DataFrame | None = None, report_dir=None,
           thumbnails: bool = True) -> Report:
    """Write the report of the scoring in ``folder`` to ``out`` (default
    ``folder/report.html``), atomically. ``body``, ``frames`` and ``videos_table`` are the
    scoring's metrics.json, frame table and videos.csv when the caller has them in memory
    (read from ``folder`` otherwise); ``report_dir`` is where the page will be opened from
    (default: beside ``out``), which the links to the source videos are relative to."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    t0 = time.perf_counter()
    folder = Path(folder)
    out = Path(out) if out else folder / REPORT
    report_dir = Path(report_dir) if report_dir else out.parent
    body, scored, frames, videos_table = _scoring(folder, body, frames, videos_table)
    config = _read_config(body)
    class_names = _class_names(frames, config)
    normal = config.get("normal_class", NORMAL_CLASS)
    anomaly = [c for c in class_names if c != normal]
    from .plots import class_colors

    colors = class_colors(class_names, normal)
    rule, rule_source = alarm_rule(body)
    videos = _videos(frames, videos_table, anomaly)
    spans = {v.video_id: [(a.start_frame, a.end_frame) for a in find_alarms(v.p, v.fps, rule)]
             for v in videos}

    sources, source_note = _attach_sources(body, videos, report_dir)
    n_thumbs = _take_thumbnails(videos, sources, spans) if thumbnails else 0
    notes = list(body.get("notes") or [])
    disagree = _check_alarms_csv(folder, spans)
    if disagree:
        notes.append(disagree)

    data = {"classes": anomaly, "colors": [colors[c] for c in anomaly], "normal": normal,
            "rule": rule.to_dict(), "videos": [_video_data(v) for v in videos]}
    metrics = body.get("metrics")
    per_class = body.get("per_class") or []
    overview = _overview_item(frames, metrics)
    timeline = _timeline_item(anomaly, colors, rule.threshold)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(
        title=_title(body), run=_run_rows(body, config, scored), rule=rule, rule_source=rule_source,
        metric_rows=_metric_rows(metrics), detection_rows=_detection_rows(body),
        event_rows=_flat("", body["events"]) if isinstance(body.get("events"), dict) else [],
        topk_rows=_flat("", body["reference_topk"]) if body.get("reference_topk") else [],
        notes=notes, per_class=per_class, worst=_worst(videos, normal),
        source_note=source_note, thumbnails=thumbnails,
        overview=overview is not None,
        data=script_json(data), items=script_json({"overview": overview, "timeline": timeline}),
        bokeh_js=_bokeh_js(), app_js=(TEMPLATES / "report.js").read_text("utf-8"),
        version=__version__, buckets=DISPLAY_BUCKETS, fmt=_fmt)
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Report(out, out.stat().st_size, len(videos), n_thumbs, time.perf_counter() - t0,
                  sum(v.source is not None for v in videos))


def _video_data(v: Video) -> dict:
    k, starts, lo, hi = envelope(v.p)
    probs = bucket_means(v.probs, starts, v.n_frames) if k > 1 else v.probs
    item = {"id": v.video_id, "truth": v.class_name, "pred": v.pred_class, "fps": v.fps,
            "n": v.n_frames, "k": k, "peak": _finite(v.peak), "mean": _finite(v.mean),
            "intervals": v.intervals, "source": v.source,
            "t": _b64(v.times[starts], "<f4"), "p": _b64(v.p, "<f4"),
            "cp": _b64(np.clip(np.rint(probs * 255), 0, 255), "u1"),
            "thumbs": v.thumbs}
    if k > 1:
        item["lo"], item["hi"] = _b64(lo, "<f4"), _b64(hi, "<f4")
    return item


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _title(body: dict) -> str:
    if body.get("video"):
        return f"video {Path(body['video']).name}"
    return f"split {body.get('split', '?')}"


def _run_rows(body: dict, config: dict, scored: str) -> list[tuple[str, str]]:
    rows = [("run", body.get("run") or "?"),
            ("model", config.get("model_id") or "?"),
            ("preset / protocol / seed", " / ".join(str(config.get(k, "?"))
                                                    for k in ("preset", "protocol", "seed"))),
            ("feature file", body.get("features") or body.get("video") or "?"),
            ("split", body.get("split") or "one video"),
            ("code version", f"scored by anomalyclip-pipeline "
                             f"{body.get('package_version') or __version__}"
                             + (f", run trained by {config['package_version']}"
                                if config.get("package_version") else "")
                             + (f", torch {config['torch_version']}"
                                if config.get("torch_version") else "")),
            ("scored", scored),
            ("report written", _utc(time.time()))]
    return rows


def write_report(scores_dir, out=None, thumbnails: bool = True) -> Report:
    """``pipeline report``: render a committed scoring folder's report again."""
    folder = Path(scores_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; pass a folder `pipeline score` wrote "
                        "(e.g. pipeline_out/scores/test)")
    out = Path(out) if out else folder / REPORT
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; name the HTML file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create its folder ({err.strerror}); choose "
                        "another --out") from None
    return render(folder, out, thumbnails=thumbnails)


def summary_line(report: Report) -> str:
    return (f"{'report':<8} {report.path}  ({report.bytes / 1e6:.1f} MB, {report.videos} "
            f"videos, open it in a browser)")


__all__ = ["REPORT", "Report", "render", "write_report", "envelope", "alarm_rule",
           "summary_line"]
