"""Issue 13, findings 13-15: settings that cannot be read, a run's config.json edited into
something that is no model, a work directory that is a file or cannot be written. Each is
one line naming the setting or file (exit status 2), before any model loads, nothing lost."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from pipeline import cli
from tests.train_helpers import TINY


def one_error_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output + repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if the CLIP text tower is loaded (errors must come before)."""
    import train.model.prompts

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the settings were checked")
    monkeypatch.setattr(train.model.prompts, "load_clip", refuse)


# ------------------------------------------------------------------ finding 13: settings
TAG = '!!python/object/apply:os.system ["touch {pwned}"]'


@pytest.mark.parametrize("options, needles", [
    (["--set", "lr=["], ["--set lr=[", "'[' is not a value"]),
    (["--sweep", "lr=[,1"], ["--sweep lr=[,1", "'[' is not a value"]),
    (["--set", f"lr={TAG}"], ["--set lr=!!python", "is not a value"]),
    (["--set", "lr=.nan"], ["lr=nan must be a finite number"]),
    (["--set", "weight_decay=.nan"], ["weight_decay=nan must be a finite number"]),
    (["--set", "weight_decay=.inf"], ["weight_decay=inf must be a finite number"]),
    (["--set", "lr=.inf"], ["lr=inf must be a finite number"]),
    (["--set", "warmup_epochs=-.inf"], ["warmup_epochs=-inf must be a finite number"]),
    (["--sweep", "lr=1e-3,.nan"], ["lr=nan must be a finite number"]),
    (["--set", "epochs=.inf"], ["epochs=inf is not a valid int"]),
    (["--set", "epochs=true"], ["epochs=True is not a valid int"]),
    (["--set", "lr=[1, 2]"], ["lr=[1, 2] is not a valid float"]),
    (["--seed", "-1"], ["seed=-1 must be an integer in [0, 2**63)"]),
    (["--seeds", "0,-3"], ["seed=-3 must be an integer"]),
    (["--sweep", "width=30"], ["width=30 must be a multiple of heads=4"]),
    (["--config", "{dir}/c.yaml"], ["c.yaml: unknown setting(s) 2"]),
    (["--config", "{dir}/c.json"], ["c.json: cannot parse"]),
    (["--config", "{dir}/nested.yaml"], ["depth={'a': 1} is not a valid int"]),
    (["--config", "{dir}/preset.yaml"], ["--preset ['ucf-crime']: unknown preset"]),
])
def test_unreadable_settings_are_one_line_before_any_model_loads(
        options, needles, synthetic_store, tmp_path, no_model_loads):
    (tmp_path / "c.yaml").write_text('{"epochs": 1, 2: 3}\n')
    (tmp_path / "c.json").write_text('{"epochs": 1, 2: 3}\n')
    (tmp_path / "nested.yaml").write_text("depth: {a: 1}\n")
    (tmp_path / "preset.yaml").write_text("preset: [ucf-crime]\n")
    options = [o.format(dir=tmp_path, pwned=tmp_path / "pwned") for o in options]
    args = ["train", "--features", str(synthetic_store), "--out", str(tmp_path / "runs")]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    one_error_line(CliRunner().invoke(cli, args + options), *needles)
    assert not (tmp_path / "pwned").exists()                 # a YAML tag runs nothing
    assert not list((tmp_path / "runs").glob("*/*"))          # no run started


# ------------------------------------------------------------ finding 14: run config.json
CLASSES = ["Arson", "Fighting", "Normal"]


@pytest.fixture
def run_dir(tmp_path):
    """A valid run folder of a tiny model, as training writes it."""
    from train.rundir import save_checkpoint
    from train.model import AnomalyCLIP

    cfg = {"class_names": CLASSES, "normal_class": "Normal", "normal_index": 2,
           "embed_dim": 16, "num_segments": 4, "seg_length": 2, "width": 8, "depth": 1,
           "heads": 2, "concat_selector": False, "stride": 1, "model_id": "tiny",
           "model_sha256": "0" * 64, "val_videos": ["v1"],
           "config": {"num_segments": 4, "seg_length": 2, "width": 8, "depth": 1, "heads": 2,
                      "concat_selector": False}}
    model = AnomalyCLIP(CLASSES, 2, 16, 4, 2, 8, 1, 2, False, centroid=torch.randn(16))
    save_checkpoint(model, cfg, tmp_path / "run")
    return tmp_path / "run"


def _edit(key, value):
    def edit(cfg):
        if value is KeyError:
            del cfg[key]
        else:
            cfg[key] = value
        if key in cfg.get("config", {}) and value is not KeyError and key != "heads":
            cfg["config"][key] = value              # consistent: only the value is wrong
    return edit


@pytest.mark.parametrize("edit, needle", [
    (_edit("heads", 3), "width=8 is not a multiple of heads=3"),
    (_edit("heads", 4), "heads=4 but the run's settings say heads=2"),
    (_edit("num_segments", KeyError), "missing key(s) num_segments"),
    (_edit("width", "8"), "width='8' must be a positive integer"),
    (_edit("depth", 0), "depth=0 must be a positive integer"),
    (_edit("embed_dim", 16.5), "embed_dim=16.5 must be a positive integer"),
    (_edit("class_names", "Arson,Fighting,Normal"), "must be a list of two or more"),
    (_edit("class_names", ["Fighting", "Arson", "Normal"]), "differ from the weights'"),
    (_edit("normal_index", 7), "normal_index=7 must be the position"),
    (_edit("normal_class", "Arson"), "normal_class='Arson' is not class_names[normal_index]"),
    (_edit("concat_selector", "no"), "concat_selector='no' must be true or false"),
    (_edit("stride", "x"), "stride='x' must be a positive integer"),
    (_edit("model_id", 5), "model_id=5 must be text"),
    (_edit("val_videos", 3), "val_videos must be a list"),
])
@pytest.mark.parametrize("how", ["split", "video"])
def test_an_edited_run_config_is_one_line_at_score(run_dir, tmp_path, edit, needle, how):
    cfg = json.loads((run_dir / "config.json").read_text())
    edit(cfg)
    (run_dir / "config.json").write_text(json.dumps(cfg))
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: the run is checked first")
    args = ["score", "--run", str(run_dir)]
    args += ["--features", str(tmp_path / "none.h5")] if how == "split" else ["--video", str(video)]
    one_error_line(CliRunner().invoke(cli, args), str(run_dir / "config.json"), needle)


# --------------------------------------------------------- finding 15: the work directory
@pytest.mark.parametrize("workdir, command, needles", [
    ("file", ["info"], ["PIPELINE_WORKDIR=", "is a file, not a folder"]),
    ("file", ["train"], ["PIPELINE_WORKDIR=", "is a file, not a folder"]),
    ("file", ["score"], ["PIPELINE_WORKDIR=", "is a file, not a folder"]),
    ("file", ["demo"], ["PIPELINE_WORKDIR=", "is a file, not a folder"]),
    ("file", ["extract", "--videos", "{tmp}"], ["PIPELINE_WORKDIR=", "is a file"]),
    ("file", ["label", "--dataset", "csv", "--annotations", "m.csv"], ["PIPELINE_WORKDIR="]),
    ("file/sub", ["train", "--features", "{store}"], ["runs", "cannot write there",
                                                      "point PIPELINE_WORKDIR to a writable"]),
    ("file/sub", ["score", "--run", "{run}", "--features", "{store}"],
     ["scores", "cannot write there"]),
    ("file/sub", ["demo"], ["demo", "cannot write there"]),
    ("/proc/pipeline", ["demo"], ["/proc/pipeline/demo", "cannot write there"]),
    (None, ["train", "--features", "{store}", "--out", "{tmp}/file"],
     ["--out", "is a file, not a folder; pass another --out"]),
    (None, ["score", "--run", "{run}", "--features", "{store}", "--out", "{tmp}/file"],
     ["--out", "is a file, not a folder"]),
    (None, ["demo", "--workdir", "{tmp}/file"], ["--workdir", "is a file, not a folder"]),
    (None, ["demo", "--workdir", "{tmp}/file/x"], ["--workdir", "cannot write there"]),
])
def test_a_workdir_or_out_that_is_no_writable_folder_is_one_line(
        workdir, command, needles, tmp_path, monkeypatch, synthetic_store, run_dir):
    (tmp_path / "file").write_text("a file, not a folder\n")
    if workdir:
        monkeypatch.setenv("PIPELINE_WORKDIR", workdir if workdir.startswith("/")
                           else str(tmp_path / workdir))
    args = [a.format(tmp=tmp_path, store=synthetic_store, run=run_dir) for a in command]
    one_error_line(CliRunner().invoke(cli, args), *needles)
    assert (tmp_path / "file").read_text() == "a file, not a folder\n"


# ------------------------------------------------- siblings: seeds of the other commands
def test_negative_seeds_of_label_and_demo_are_one_line(tmp_path):
    import pandas as pd

    from features.datasets import carve_validation
    from features.errors import UserError

    labels = pd.DataFrame({"video_id": ["a", "b", "c"], "split": "train",
                           "class_name": ["Normal", "Normal", "Arson"]})
    with pytest.raises(UserError, match=r"--val-seed -1: the seed of the validation draw") as err:
        carve_validation(labels, 0.5, seed=-1)               # `pipeline label --val-seed -1`
    assert "\n" not in str(err.value)
    demo = CliRunner().invoke(cli, ["demo", "--seed", "-1", "--workdir", str(tmp_path / "d")])
    one_error_line(demo, "seed=-1 must be an integer")
    assert not (tmp_path / "d").exists()                         # checked before any work


def test_a_damaged_result_json_is_one_line(synthetic_store, tmp_path, no_model_loads):
    from train.stage import resolve_config
    from train.sweep import plan_runs

    # the run `pipeline train` plans for these settings (the custom preset: no paper dataset)
    (spec,) = plan_runs(resolve_config(synthetic_store, settings=TINY), synthetic_store,
                        tmp_path / "runs")
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "result.json").write_text('{"best": ')            # cut short by an editor
    args = ["train", "--features", str(synthetic_store), "--out", str(tmp_path / "runs")]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    one_error_line(CliRunner().invoke(cli, args), "result.json: not a result of this tool",
                   "delete the file to train this run again")
