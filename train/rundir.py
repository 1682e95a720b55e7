"""The run folder and the runs folder have one owner, this module: every file name in them,
``config.json`` as a declared schema (:class:`RunConfig`, with its own version), and the
checkpoint written and read back.

A run folder, ``runs/<preset>_<sweep values>_seed<S>_<hash>/``, holds the files of
:data:`RUN_FILES`; the runs folder above it the files of :data:`RUNS_FILES`. Every other
module takes the names from here (tests/test_rundir.py checks that no other module spells
one, and that every writer writes only declared files and config keys). A new file of a
run folder is one line: ``NAME = run_file("name.ext", "what it holds")``.

``model.safetensors`` holds the centroid m, the final text embeddings T
(``text_features``), the BatchNorm running statistics, the temporal model, and, for the
record, the learned context vectors and text projection. The frozen CLIP text tower is not
saved: scoring needs only T, so a checkpoint loads without CLIP. ``config.json`` records
everything needed to rebuild and score the model and to detect a mismatched store (class
names, N, L, model_id / model_sha256, the store's stride ...), and the version of this tool
that wrote it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

import features
from features.errors import UserError, first_line
from features.safe_write import atomic_write

from .model import FROZEN_TOWER, AnomalyCLIP

RUN_FILES: dict[str, str] = {}       # file of a run folder -> what it holds
RUNS_FILES: dict[str, str] = {}      # file of a runs folder -> what it holds


def run_file(name: str, about: str) -> str:
    """Declare a file of a run folder (``about``: one line for the docs); its name."""
    RUN_FILES[name] = about
    return name


def runs_file(name: str, about: str) -> str:
    """Declare a file of a runs folder; its name."""
    RUNS_FILES[name] = about
    return name


WEIGHTS = run_file("model.safetensors", "best checkpoint: centroid m, text embeddings T, "
                   "BatchNorm statistics, temporal model (+ context vectors, text projection). "
                   "No CLIP weights: scoring needs none")
CONFIG = run_file("config.json", "everything needed to score: class names and order, N, L, "
                  "width, depth, model_id / model_sha256, the file's stride, preset, seed, all "
                  "settings, validation videos, best epoch and its metrics, this tool's version "
                  "(its keys: below)")
METRICS = run_file("metrics.csv", "one row per epoch: lr (at the epoch's first step), loss and "
                   "its 7 terms (8 with `lambda_rank`), validation metrics (incl. the selector's "
                   "and top-1 class), time")
LOSS_PLOT = run_file("loss.png", "training loss per step and per epoch, validation metric on a "
                     "second axis")
RESULT = run_file("result.json", "written last: the run finished (and after which epochs it "
                  "was resumed)")
STATE = run_file("resume.pt", "while the run is unfinished: its state after the last "
                 "finished epoch (deleted when result.json is written)")
SUMMARY = runs_file("summary.csv", "one row per run (seed, swept values, status, best epoch, "
                    "validation metrics, checkpoint path relative to `runs/`); `best=True` marks "
                    "the run `pipeline score` uses by default")

FORMAT = "anomalyclip-run"
CONFIG_VERSION = 2                   # 2: records package_version; 1: did not


def _key(about: str, default=dataclasses.MISSING):
    """A config.json key with its one-line meaning (``default``: the key is optional)."""
    if isinstance(default, (list, dict)):
        kind = type(default)
        return field(default_factory=kind, metadata={"about": about})
    return field(default=default, metadata={"about": about})


@dataclass
class RunConfig:
    """``config.json`` of a run: every key it may hold, with its meaning. Written by
    :func:`save_checkpoint` only, read back and checked by :func:`read_config`."""
    class_names: list = _key("every class, in the order of the model's outputs, Normal "
                             "included")
    normal_index: int = _key("position of the normal class in class_names")
    embed_dim: int = _key("feature width D, as the feature file's embed_dim")
    num_segments: int = _key("N: segments per window")
    seg_length: int = _key("L: consecutive rows per segment")
    width: int = _key("E: width of the temporal model")
    depth: int = _key("layers of the temporal model")
    heads: int = _key("attention heads of the temporal model")
    concat_selector: bool = _key("temporal input [S, x - m] instead of x - m")
    normal_class: str | None = _key("name of the normal class", None)
    format: str = _key("always anomalyclip-run: marks a run config of this tool", FORMAT)
    format_version: int = _key("version of this schema (2: with package_version)",
                               CONFIG_VERSION)
    package_version: str | None = _key("version of this tool that wrote the run", None)
    features: str | None = _key("the feature file trained on (absolute path)", None)
    stride: int | None = _key("the feature file's stride", None)
    model_id: str | None = _key("the CLIP whose text tower trained (and that extracts a new "
                                "video for scoring)", None)
    model_sha256: str | None = _key("sha256 of that CLIP's weights", None)
    dataset: str | None = _key("the feature file's dataset (annotation format)", None)
    preset: str | None = _key("the preset the settings started from", None)
    seed: int | None = _key("the training seed", None)
    config: dict = _key("every training setting (train/config.py, TrainConfig)", {})
    protocol: str | None = _key("validated or reference", None)
    val_source: str | None = _key("where the validation videos came from", None)
    val_videos: list = _key("the validation videos' ids", [])
    val_labels: str | None = _key("intervals, or video-level when validation had none", None)
    select_metric: str | None = _key("the validation metric that picked the checkpoint "
                                     "(last_epoch: none)", None)
    torch_version: str | None = _key("the torch that trained", None)
    device: str | None = _key("the device that trained", None)
    best_epoch: int | None = _key("the epoch of these weights (null: the last, unselected)",
                                  None)
    metrics: dict = _key("that epoch's validation metrics (null where undefined)", {})
    baselines: dict = _key("training-free baselines (train/baselines.py) fitted on the "
                           "training videos, on the validation videos: novelty_auc, "
                           "residual_auc, their video AUCs, prototype_top1", {})


CONFIG_KEYS = {f.name: f.metadata["about"] for f in dataclasses.fields(RunConfig)}


class UndeclaredKey(ValueError):
    """A writer put a key into config.json that :class:`RunConfig` does not declare."""


def write_config(run_dir: Path, values: dict) -> None:
    """Write ``run_dir/config.json`` from ``values`` (every key declared in
    :class:`RunConfig`), recording this tool's version."""
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise UndeclaredKey(f"{CONFIG} keys {unknown} are not declared in train/rundir.py "
                            "RunConfig; declare them there")
    try:
        RunConfig(**values)                  # every required key is there
    except TypeError as err:
        raise UndeclaredKey(f"{CONFIG}: {err}") from None
    body = {"format": FORMAT, "format_version": CONFIG_VERSION,
            "package_version": features.__version__, **values}
    body.update(format=FORMAT, format_version=CONFIG_VERSION,
                package_version=features.__version__)
    text = json.dumps(body, indent=2, default=str)
    atomic_write(Path(run_dir) / CONFIG, lambda p: p.write_text(text + "\n"))


def markdown() -> str:
    """The tables of the run folder's files and config.json's keys (docs/training.md)."""
    lines = ["| folder | file | what |", "| --- | --- | --- |"]
    lines += [f"| run | `{n}` | {a} |" for n, a in RUN_FILES.items()]
    lines += [f"| runs | `{n}` | {a} |" for n, a in RUNS_FILES.items()]
    lines += ["", "| `config.json` key | what |", "| --- | --- |"]
    lines += [f"| `{n}` | {a} |" for n, a in CONFIG_KEYS.items()]
    return "\n".join(lines)


def save_checkpoint(model: AnomalyCLIP, run_config: dict, run_dir: str | Path) -> None:
    """Write the weights and config.json of ``model`` into ``run_dir`` (each atomically)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.refresh_text()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if not k.startswith(FROZEN_TOWER)}
    atomic_write(run_dir / WEIGHTS, lambda p: save_file(state, str(p), metadata={
        "format": FORMAT, "class_names": json.dumps(model.class_names)}))
    write_config(run_dir, run_config)


# config.json keys that shape the model (the rest describes the run)
_SHAPE_INTS = ("embed_dim", "num_segments", "seg_length", "width", "depth", "heads")


def check_run_config(cfg: dict, path: Path) -> None:
    """UserError naming ``path`` (config.json) when it cannot describe a model: a key
    missing, a value of the wrong type or range, settings that contradict each other."""
    def bad(what: str):
        raise UserError(f"{path}: {what}; the file was edited or damaged: restore it or train "
                        "the run again")

    missing = [k for k in ("class_names", "normal_index", *_SHAPE_INTS, "concat_selector")
               if k not in cfg]
    if missing:
        bad(f"missing key(s) {', '.join(missing)}")
    names = cfg["class_names"]
    if not (isinstance(names, list) and len(names) >= 2
            and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names)):
        bad(f"class_names={names!r} must be a list of two or more distinct names")
    for key in _SHAPE_INTS:
        if type(cfg[key]) is not int or cfg[key] < 1:
            bad(f"{key}={cfg[key]!r} must be a positive integer")
    index = cfg["normal_index"]
    if type(index) is not int or not 0 <= index < len(names):
        bad(f"normal_index={index!r} must be the position of the normal class in class_names")
    if cfg.get("normal_class", names[cfg["normal_index"]]) != names[cfg["normal_index"]]:
        bad(f"normal_class={cfg['normal_class']!r} is not class_names[normal_index]")
    if not isinstance(cfg["concat_selector"], bool):
        bad(f"concat_selector={cfg['concat_selector']!r} must be true or false")
    if cfg["width"] % cfg["heads"]:
        bad(f"width={cfg['width']} is not a multiple of heads={cfg['heads']}")
    settings = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    for key in ("num_segments", "seg_length", "width", "depth", "heads", "concat_selector"):
        if key in settings and settings[key] != cfg[key]:
            bad(f"{key}={cfg[key]!r} but the run's settings say {key}={settings[key]!r}")
    stride = cfg.get("stride")
    if stride is not None and (type(stride) is not int or stride < 1):
        bad(f"stride={stride!r} must be a positive integer or null")
    for key in ("model_id", "model_sha256", "normal_class"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            bad(f"{key}={cfg[key]!r} must be text or null")
    videos = cfg.get("val_videos", [])
    if not (isinstance(videos, list) and all(isinstance(v, str) for v in videos)):
        bad("val_videos must be a list of video ids")


def read_config(run_dir: str | Path) -> dict:
    """``run_dir/config.json``, checked: a UserError
    naming the file when it is not readable or cannot describe a model."""
    path = Path(run_dir) / CONFIG
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not readable JSON ({first_line(err)}); "
                        "the run is damaged: train it again or pass another run") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise UserError(f"{path}: not a run config of this tool")
    check_run_config(cfg, path)
    return cfg


def build_model(cfg: dict) -> AnomalyCLIP:
    """An AnomalyCLIP without prompt learner, shaped as config.json ``cfg`` says."""
    return AnomalyCLIP(cfg["class_names"], cfg["normal_index"], cfg["embed_dim"],
                       cfg["num_segments"], cfg["seg_length"], cfg["width"], cfg["depth"],
                       cfg["heads"], cfg["concat_selector"],
                       selector_logit=bool(cfg.get("config", {}).get("selector_logit", False)))


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode on ``device``, config dict) of a run folder written by training."""
    run_dir = Path(run_dir)
    if (run_dir / WEIGHTS).exists() is False or (run_dir / CONFIG).exists() is False:
        raise UserError(f"{run_dir}: not a training run (needs {WEIGHTS} and {CONFIG}); pass a "
                        "folder under runs/ written by `pipeline train`")
    cfg = read_config(run_dir)
    model = build_model(cfg)
    try:
        weights = load_file(str(run_dir / WEIGHTS))
        with safe_open(str(run_dir / WEIGHTS), "pt") as f:
            saved_names = (f.metadata() or {}).get("class_names")
    except (SafetensorError, OSError) as err:
        raise UserError(f"{run_dir / WEIGHTS}: not readable safetensors ({err}); the run is "
                        "damaged: train it again or pass another run") from None
    if saved_names and json.loads(saved_names) != cfg["class_names"]:
        raise UserError(f"{run_dir / CONFIG}: class_names {cfg['class_names']} differ from the "
                        f"weights' {json.loads(saved_names)}; restore the file or train the run "
                        "again")
    state = {k: v for k, v in weights.items() if not k.startswith("prompt_learner.")}
    if any(k.startswith("temporal.layers.") and not k.startswith("temporal.layers.blocks.")
           for k in state):
        raise UserError(f"{run_dir}: trained with the earlier residual temporal model, which "
                        "this version no longer has; train the run again")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"{run_dir / WEIGHTS}: weights do not fit {run_dir / CONFIG} "
                        f"({first_line(err)}); the run is damaged: train it again") \
            from None
    return model.to(device).eval(), cfg


def find_best_run(runs_dir: str | Path) -> Path:
    """The run marked best in ``runs_dir/summary.csv``; ``runs_dir`` itself if it is a run."""
    runs_dir = Path(runs_dir)
    if (runs_dir / WEIGHTS).exists() and (runs_dir / CONFIG).exists():
        return runs_dir
    summary = runs_dir / SUMMARY
    if not summary.exists():
        raise UserError(f"{runs_dir}: no {SUMMARY} and no checkpoint; run `pipeline train` "
                        "first or pass a run folder")
    table = pd.read_csv(summary)
    best = table[table["best"].astype(str).str.lower() == "true"]
    if best.empty:
        raise UserError(f"{summary}: no run is marked best (no run finished with validation "
                        "metrics); pass a run folder instead")
    run = Path(best.iloc[0]["run_dir"])
    return run if run.is_absolute() else runs_dir / run
