"""The run folder has one owner (train/rundir.py): every file a writer puts into a run
folder or a runs folder is declared there, config.json holds only declared keys and records
the package version, and no other module spells a run-folder file name."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

import features
from features.errors import UserError
import train.run as run_module
from tests.train_helpers import TINY
from train import rundir
from train.config import build_config
from train.model import AnomalyCLIP
from train.run import train_run
from train.stage import train

ROOT = Path(__file__).resolve().parents[1]


def _check_run_folder(run: Path) -> dict:
    undeclared = sorted(p.name for p in run.iterdir() if p.name not in rundir.RUN_FILES)
    assert not undeclared, f"{run} holds undeclared files {undeclared}"
    cfg = json.loads((run / rundir.CONFIG).read_text())
    extra = sorted(set(cfg) - set(rundir.CONFIG_KEYS))
    assert not extra, f"config.json keys {extra} are not declared in RunConfig"
    assert cfg["package_version"] == features.__version__
    assert cfg["format_version"] == rundir.CONFIG_VERSION and cfg["format"] == rundir.FORMAT
    return cfg


def test_every_writer_writes_only_declared_files_and_keys(synthetic_store, tmp_path,
                                                          monkeypatch):
    # a run stopped before it finished: the resume state is in its folder
    config = build_config(overrides={**TINY, "epochs": 2})
    run = tmp_path / "stopped"

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the plot")

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "plot_losses", stop)
        with pytest.raises(RuntimeError):
            train_run(synthetic_store, config, run, progress=False)
    assert (run / rundir.STATE).exists()
    _check_run_folder(run)

    # the same run finished (resumed), and a run without validation (reference protocol)
    train_run(synthetic_store, config, run, progress=False)
    assert (run / rundir.RESULT).exists() and not (run / rundir.STATE).exists()
    assert _check_run_folder(run)["best_epoch"] is not None
    reference = build_config(overrides={**TINY, "epochs": 1, "protocol": "reference"})
    assert _check_run_folder(train_run(synthetic_store, reference, tmp_path / "ref",
                                       progress=False).run_dir)["best_epoch"] is None

    # the runs folder of `pipeline train`
    runs = tmp_path / "runs"
    summary = train(synthetic_store, settings=TINY, epochs=1, out=runs, progress=False)
    for path in runs.iterdir():
        if path.is_dir():
            _check_run_folder(path)
        else:
            assert path.name in rundir.RUNS_FILES, f"{runs} holds undeclared file {path.name}"
    assert summary.summary_path == runs / rundir.SUMMARY
    assert rundir.find_best_run(runs) == summary.best_run


def test_a_writer_cannot_write_an_undeclared_key(tmp_path):
    classes = ["Arson", "Normal"]
    cfg = {"class_names": classes, "normal_index": 1, "embed_dim": 16, "num_segments": 4,
           "seg_length": 2, "width": 8, "depth": 1, "heads": 2, "concat_selector": False}
    model = AnomalyCLIP(classes, 1, 16, 4, 2, 8, 1, 2, False, centroid=torch.randn(16))
    with pytest.raises(rundir.UndeclaredKey, match="learning_rate"):
        rundir.save_checkpoint(model, {**cfg, "learning_rate": 1e-3}, tmp_path / "a")
    with pytest.raises(rundir.UndeclaredKey, match="width"):
        rundir.save_checkpoint(model, {k: v for k, v in cfg.items() if k != "width"},
                               tmp_path / "b")
    rundir.save_checkpoint(model, cfg, tmp_path / "ok")
    _, loaded = rundir.load_run(tmp_path / "ok")
    assert loaded["package_version"] == features.__version__


def test_a_config_of_schema_version_1_still_loads(tmp_path):
    """Runs written before config.json recorded the package version load as before."""
    classes = ["Arson", "Normal"]
    cfg = {"class_names": classes, "normal_index": 1, "embed_dim": 16, "num_segments": 4,
           "seg_length": 2, "width": 8, "depth": 1, "heads": 2, "concat_selector": False}
    model = AnomalyCLIP(classes, 1, 16, 4, 2, 8, 1, 2, False, centroid=torch.randn(16))
    rundir.save_checkpoint(model, cfg, tmp_path)
    body = json.loads((tmp_path / rundir.CONFIG).read_text())
    del body["package_version"]
    body["format_version"] = 1
    (tmp_path / rundir.CONFIG).write_text(json.dumps(body))
    loaded, _ = rundir.load_run(tmp_path)
    torch.testing.assert_close(loaded.centroid, model.centroid)


def _production_modules():
    for package in ("features", "extract", "train", "evaluate", "samples"):
        yield from sorted((ROOT / package).rglob("*.py"))
    yield ROOT / "pipeline.py"
    yield ROOT / "demo.py"


def _strings(tree: ast.AST):
    """Every string constant of a module but its docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node


# modules that name files of other folders with the same names: the owner itself, and a
# Hugging Face model folder (config.json, model.safetensors of the CLIP)
OTHER_FOLDERS = {"train/rundir.py", "features/clip_loader.py", "samples/tiny_clip.py"}


def test_no_other_module_spells_a_run_folder_file_name():
    names = set(rundir.RUN_FILES) | set(rundir.RUNS_FILES)
    found = []
    for path in _production_modules():
        if path.relative_to(ROOT).as_posix() in OTHER_FOLDERS:
            continue
        for node in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            for name in names:
                if name in node.value:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not found, "import the name from train/rundir.py instead: " + "; ".join(found)


def test_a_run_of_the_earlier_residual_temporal_model_is_one_clear_line(tmp_path):
    """The residual temporal model left the package (bench/residual_temporal.py keeps it as
    a baseline): a run trained with it says so instead of 'damaged'."""
    from bench.residual_temporal import ResidualTemporalModel

    classes = ["Arson", "Normal"]
    cfg = {"class_names": classes, "normal_index": 1, "embed_dim": 16, "num_segments": 4,
           "seg_length": 2, "width": 8, "depth": 1, "heads": 2, "concat_selector": False}
    model = AnomalyCLIP(classes, 1, 16, 4, 2, 8, 1, 2, False, centroid=torch.randn(16))
    model.temporal = ResidualTemporalModel(16, 8, 1, 2, 4, 2)
    rundir.save_checkpoint(model, cfg, tmp_path)
    with pytest.raises(UserError, match="earlier residual temporal model.*train the run again"):
        rundir.load_run(tmp_path)
