"""Shared fixtures: the offline tiny CLIP and small generated videos (ffmpeg lavfi)."""
from __future__ import annotations

import os

import pytest

# Tests never reach the Hugging Face hub. Set before anything imports huggingface_hub, which
# reads the variable once, at import: session fixtures (the tiny CLIP) import transformers
# before any function-scoped fixture runs, and a hub id that is not there then costs ~23 s
# of retries per test instead of failing at once.
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """Path of the offline random tiny CLIP (projection dim 512), built once per session."""
    from samples.tiny_clip import make_tiny_clip

    return str(make_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip"))


@pytest.fixture(scope="session")
def synthetic_store(tiny_clip, tmp_path_factory):
    """Labelled synthetic store: 24+24 train, 8+8 test videos, anomalies along text directions."""
    from samples.synthetic import make_synthetic_store

    return make_synthetic_store(tmp_path_factory.mktemp("stores") / "synthetic.h5", tiny_clip,
                                seed=0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`pipeline demo` run once per session in its own work directory: (workdir, output).
    Tests only read it (tests/test_demo.py, tests/test_report_browser.py)."""
    from click.testing import CliRunner

    from pipeline import cli

    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_WORKDIR", str(root / "pipeline_out"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        result = CliRunner().invoke(cli, ["demo", "--workdir", str(root / "demo")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root / "demo", result.output


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch):
    """Every test gets its own default work directory (pipeline_out)."""
    monkeypatch.setenv("PIPELINE_WORKDIR", str(tmp_path / "pipeline_out"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
