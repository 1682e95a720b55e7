"""The docs: the README is a front page that keeps its two fresh-machine commands, and the
MkDocs site under docs/ builds strictly (a broken link, a missing page or a page left out of
the nav fails), with the tables the code declares pasted in as they are."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from features import schema
from train import rundir

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pipeline demo"
TESTS = ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
         ".venv/bin/python -m pytest -q")


def test_the_readme_is_a_front_page_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    commands = [line.strip() for line in text.splitlines() if line.startswith("    python3 -m venv")]
    assert commands == [DEMO, TESTS]
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), f"README links to a missing page {link}"


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir",
                           str(tmp_path / "site")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "changes" / "index.html").exists()


def test_the_declared_tables_are_in_the_docs():
    training = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    assert rundir.markdown() in training, ("docs/training.md's run folder tables differ from "
                                           "train/rundir.py: paste rundir.markdown() into it")
    assert schema.markdown() in (ROOT / "docs" / "feature-file.md").read_text(encoding="utf-8")


def test_every_figure_page_names_its_bench_script():
    """Each table of measurements on the benchmarks page sits under a paragraph that names
    the bench/ script that produced it."""
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for block in re.split(r"\n## ", text)[1:]:
        for table in re.finditer(r"(?m)^\|.*\|$", block):
            before = block[:table.start()]
            assert "bench/" in before, f"a table without its bench/ script: {table.group(0)}"
            break
