"""The configuration of one training run: one flat dataclass, every field overridable.

Precedence (later wins): defaults -> ``--preset`` -> ``--config FILE.yaml|json`` ->
``--set key=value`` -> dedicated CLI flags (``--epochs``, ``--seed``, ``--device``).
A config file may itself name a ``preset``; it is applied before the file's other keys.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from features.errors import UserError, first_line

from .presets import get_preset

SELECT_METRICS = ("auto", "auc", "ap", "mauc", "video_auc")
CACHE_MODES = ("auto", "memory", "hdf5")
PROTOCOLS = ("validated", "reference")
SELECT_BY = ("selector", "temporal", "blend")
DIRECTION_INITS = ("text", "data", "text+data", "residual")


@dataclass(frozen=True)
class TrainConfig:
    preset: str | None = None
    # validated: carve validation, select the best epoch, per-step schedule (ours);
    # reference: the reference's protocol (train.protocol)
    protocol: str = "validated"
    # -- model (docs/method.md, Model) --------------------------------------------------
    num_segments: int = 32            # N: segments per window
    seg_length: int = 16              # L: consecutive frames (store rows) per segment
    width: int = 256                  # E: temporal model width
    depth: int = 1                    # axial transformer layers
    heads: int = 8
    concat_selector: bool = False     # temporal input [S, x - m] instead of x - m
    n_ctx: int = 8                    # learnable CoOp context vectors per class
    ctx_init_std: float = 0.02
    # -- MIL selection and losses (docs/method.md, Training) ----------------------------
    topk: int = 3                     # k of top-k / bottom-k segments
    keep_prob: float = 0.3            # a segment can be selected with this probability
    lambda_dir_abn: float = 1.0
    lambda_dir_nor: float = 1.0
    lambda_topk_abn: float = 1.0
    lambda_bottomk_abn: float = 1.0
    lambda_topk_nor: float = 1.0
    lambda_smooth: float = 8e-4
    lambda_sparse: float = 8e-3
    # -- when CLIP's text does not point at the anomalies (docs/training.md: a run at chance) -------
    select_by: str = "selector"       # top-k by S (the paper); after warm-up by the temporal
                                      # score ("temporal") or both, z-scored ("blend")
    direction_init: str = "text"      # "data" / "text+data": directions start at (or add)
                                      # each class's event contrast in the training videos;
                                      # "residual": its contrast off the normal manifold
    lambda_rank: float = 0.0          # MIL ranking hinge, abnormal vs normal top-k scores
    selector_logit: bool = False      # temporal logit + learned a * max_c S + b (custom)
    # -- optimisation ---------------------------------------------------------------------
    lr: float = 1e-5
    weight_decay: float = 0.2
    warmup_epochs: float = 5
    epochs: int = 50
    batch_size: int = 64              # videos per step: half abnormal, half normal
    steps_per_epoch: int | None = None  # default: every video of the larger class once
    # -- data and validation --------------------------------------------------------------
    val_fraction: float = 0.2         # carved from train when the store has no val split
    val_seed: int = 0                 # the carving's seed: the same val videos for every run
    val_every: int = 1                # epochs between validations
    select_metric: str = "auto"       # picks the checkpoint; auto: auc, or video_auc when
                                      # validation videos have no intervals
    cache: str = "auto"               # windows from RAM (memory), HDF5, or auto by size
    loader_workers: int | None = None  # DataLoader workers; None: 0 on CPU, 4 on CUDA
    # -- run --------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"
    text_model: str | None = None     # CLIP to load instead of the store's model_id (same weights)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, values: dict, source: str = "override") -> "TrainConfig":
        """A copy with ``values`` set, validated (a sweep point or a seed of the grid)."""
        config = _apply(self, values, source)
        validate(config)
        return config


FIELDS = {f.name: f for f in fields(TrainConfig)}


def _is_text(key: str) -> bool:
    """Settings holding text (a device, a path, a mode) rather than numbers or flags."""
    return not any(t in str(FIELDS[key].type) for t in ("bool", "int", "float"))


def coerce(key: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the field's type; UserError naming the key when impossible."""
    kind = FIELDS[key].type
    if value is None:
        if "None" in str(kind):
            return None
        raise UserError(f"{source}: {key} cannot be empty")
    try:
        if not isinstance(value, (str, int, float)):      # a list, a mapping, a date ...
            raise TypeError(value)
        if "bool" in str(kind):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if isinstance(value, bool) and not _is_text(key):  # epochs=true is no number
            raise TypeError(value)
        if "int" in str(kind):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if "float" in str(kind):
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{source}: {key}={value!r} is not a valid {kind}") from None


def read_value(key: str, text: str, source: str) -> Any:
    """The value of ``key=text`` on the command line: text settings as given, the others
    read as YAML scalars (1e-4, 0.001, true, ~); UserError when the text is no value."""
    text = text.strip()
    if not text:
        return None
    if key in FIELDS and _is_text(key):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        why = getattr(err, "problem", None) or first_line(err)
        raise UserError(f"{source}: {text!r} is not a value ({why}); give a number such as "
                        "1e-4, true/false, or a YAML scalar") from None


def _apply(config: TrainConfig, values: dict, source: str) -> TrainConfig:
    unknown = [str(k) for k in values if k not in FIELDS]
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; valid keys: "
                        f"{', '.join(FIELDS)}")
    return replace(config, **{k: coerce(k, v, source) for k, v in values.items()})


def parse_set(items: Iterable[str]) -> dict:
    """``["lr=1e-4", "depth=2"]`` -> ``{"lr": 1e-4, "depth": 2}`` (values read as YAML)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item}: expected key=value, e.g. --set lr=1e-4")
        key, value = item.split("=", 1)
        out[key.strip()] = read_value(key.strip(), value, f"--set {item}")
    return out


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config {path}: no such file (pass a YAML or JSON file of settings)")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise UserError(f"--config {path}: not a text file; pass a YAML or JSON file of "
                        "settings (key: value)") from None
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = first_line(err)
        raise UserError(f"--config {path}: cannot parse ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of settings (key: value)")
    return data


def build_config(preset: str | None = None, config_file: str | Path | None = None,
                 overrides: dict | None = None, sized: dict | None = None) -> TrainConfig:
    """Defaults, then the preset (and its ``sized`` values for the dataset, see
    :func:`train.presets.custom_schedule`), the config file and the overrides, validated."""
    file_values = read_config_file(config_file) if config_file else {}
    overrides = dict(overrides or {})
    preset = overrides.pop("preset", None) or preset or file_values.pop("preset", None)
    file_values.pop("preset", None)
    config = TrainConfig()
    if preset:
        values = {**get_preset(preset).params, **(sized or {})}
        config = replace(_apply(config, values, f"preset {preset}"), preset=preset)
    config = _apply(config, file_values, f"--config {config_file}")
    config = _apply(config, overrides, "--set")
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    for name, f in FIELDS.items():
        value = getattr(config, name)
        if "float" in str(f.type) and value is not None and not math.isfinite(value):
            raise UserError(f"setting {name}={value} must be a finite number")
    for key in ("seed", "val_seed"):
        if not 0 <= getattr(config, key) < 2 ** 63:
            raise UserError(f"setting {key}={getattr(config, key)} must be an integer in "
                            "[0, 2**63)")
    positive = ("num_segments", "seg_length", "width", "depth", "heads", "n_ctx", "topk",
                "epochs", "batch_size", "val_every")
    for key in positive:
        if getattr(config, key) < 1:
            raise UserError(f"setting {key}={getattr(config, key)} must be >= 1")
    if config.batch_size < 2 or config.batch_size % 2:
        raise UserError(f"setting batch_size={config.batch_size} must be even (half abnormal, "
                        "half normal videos)")
    if config.width % config.heads:
        raise UserError(f"setting width={config.width} must be a multiple of heads={config.heads}")
    if config.topk > config.num_segments:
        raise UserError(f"setting topk={config.topk} exceeds num_segments={config.num_segments}")
    if not 0 < config.keep_prob <= 1:
        raise UserError(f"setting keep_prob={config.keep_prob} must be in (0, 1]")
    if not 0 <= config.val_fraction < 1:
        raise UserError(f"setting val_fraction={config.val_fraction} must be in [0, 1)")
    if config.select_metric not in SELECT_METRICS:
        raise UserError(f"setting select_metric={config.select_metric}: choose one of "
                        f"{', '.join(SELECT_METRICS)}")
    for key, choices in (("protocol", PROTOCOLS),
                         ("select_by", SELECT_BY), ("direction_init", DIRECTION_INITS)):
        if getattr(config, key) not in choices:
            raise UserError(f"setting {key}={getattr(config, key)}: choose one of "
                            f"{', '.join(choices)}")
    if config.lambda_rank < 0:
        raise UserError(f"setting lambda_rank={config.lambda_rank} must be >= 0")
    if config.cache not in CACHE_MODES:
        raise UserError(f"setting cache={config.cache}: choose one of {', '.join(CACHE_MODES)}")
    if config.lr <= 0 or config.warmup_epochs < 0 or config.weight_decay < 0:
        raise UserError("settings lr must be > 0, warmup_epochs and weight_decay >= 0")
    if config.steps_per_epoch is not None and config.steps_per_epoch < 1:
        raise UserError(f"setting steps_per_epoch={config.steps_per_epoch} must be >= 1")
