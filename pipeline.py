"""`pipeline`: the command line. Thin: parse options, call one function per stage, print.

    extract  videos -> CLIP frame embeddings, one HDF5 file   extract.extract_videos
    info     describe a feature file (--schema: its names)   features.describe.describe
    label    a dataset's labels into a feature file          features.datasets.label_store
    import   a feature file from .npy features made elsewhere extract.import_features
    train    AnomalyCLIP runs on a labelled feature file     train.train
    score    scores, metrics, plots: a split or one video    evaluate.score_split, score_video
    report   the HTML report of a scoring folder, again      evaluate.report.write_report
    demo     all of the above on generated videos            demo.run_demo

Every stage is a plain Python function too (the right-hand column); this file only turns
options into arguments and results into lines on the terminal. It imports a stage only
when its command runs, so the CLI starts fast.
"""
from __future__ import annotations

import functools
import logging
import signal
import sys

import click

from features import UserError, paths
from features.errors import one_line
from features.schema import DEFAULT_FPS, SPLITS

log = logging.getLogger("pipeline")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    for noisy in ("distributed", "transformers", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def user_errors(fn):
    """Print a UserError as one line (no traceback) and exit with status 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            click.echo(f"error: {one_line(err)}", err=True)   # one line, always
            sys.exit(2)
        except KeyboardInterrupt as err:     # a stage may say what it kept (train: epochs)
            _interrupted(err)
        except SystemError as err:
            # Ctrl-C inside a C callback (h5py iterating attributes) comes back wrapped in a
            # SystemError whose cause is the KeyboardInterrupt: still an interrupt
            interrupt = _cause(err, KeyboardInterrupt)
            if interrupt is None:
                raise
            _interrupted(interrupt)
    return wrapper


def _cause(err: BaseException, kind: type) -> BaseException | None:
    """The first exception of ``kind`` among ``err``'s causes and contexts, else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kind):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _interrupted(err: BaseException) -> None:
    click.echo(f"interrupted: {err}" if str(err) else "interrupted: finished work is kept; "
               "run the same command again to go on", err=True)
    sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool):
    """Weakly-supervised video anomaly detection and recognition (AnomalyCLIP).

    \b
    extract  videos -> CLIP frame embeddings in one HDF5 file
    info     describe a feature file
    label    attach a dataset's split, classes and intervals to a feature file
    import   build a feature file from features extracted elsewhere (.npy)
    train    train AnomalyCLIP on a labelled feature file (Dask: seeds, sweeps)
    score    frame scores, metrics, plots and report.html of a split, or of one new video
    report   render a scoring folder's interactive HTML report again
    demo     the whole pipeline on generated videos, in its own folder
    Outputs go under ./pipeline_out (or $PIPELINE_WORKDIR), where later commands find them.
    """
    _setup_logging(verbose)


# ---------------------------------------------------------------- shared options
# The choices of --dataset and --preset, spelled here so that the CLI starts without
# importing the stages; tests/test_cli_names.py checks they are features.datasets.DATASETS
# and train.presets.PRESETS.
DATASETS = ("ucf-crime", "xd-violence", "shanghaitech", "csv", "bundle")
PRESETS = ("ucf-crime", "xd-violence", "shanghaitech", "custom")


def _label_options(fn=None, *, required: bool = True):
    """--dataset/--annotations/--val-fraction/--val-seed/--allow-missing/--labels, shared by
    label, import and (with ``required=False``: ``@_label_options(required=False)``)
    extract."""
    if fn is None:
        return functools.partial(_label_options, required=required)
    options = [
        click.option("--dataset", required=required, type=click.Choice(DATASETS), default=None,
                     help="Which annotation format --annotations is in (see docs/datasets.md)."),
        click.option("--annotations", required=required, type=click.Path(), default=None,
                     help="The dataset's official files (folder) or your manifest (CSV/Parquet)."),
        click.option("--val-fraction", type=float, default=0.2, show_default=True,
                     help="Share of each training class set aside as split=val (0 = none)."),
        click.option("--val-seed", type=int, default=0, show_default=True,
                     help="Seed of the validation draw."),
        click.option("--allow-missing", is_flag=True,
                     help="Label the listed videos that have features, skip the others."),
        click.option("--labels", type=click.Path(), default=None,
                     help="id,name CSV naming the label ids of a reference bundle (built in "
                          "for ucf-crime, xd-violence, shanghaitech; needed for bundle)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _wait_option(fn):
    """--wait, shared by the commands that write a feature file (one writer at a time)."""
    return click.option("--wait", is_flag=True,
                        help="If another run is writing the feature file, wait for it to "
                             "finish instead of stopping with an error.")(fn)


# ---------------------------------------------------------------- stage one: extract
@cli.command()
@click.option("--videos", "videos_dir", required=True, type=click.Path(),
              help="Folder of videos, searched recursively (mp4, avi, mkv, mov, webm, ...).")
@click.option("--out", type=click.Path(), default=None,
              help="Feature file to write or extend [default: pipeline_out/features.h5].")
@click.option("--model", default=None,
              help="CLIP hub id or local folder [default: openai/clip-vit-base-patch16].")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every Nth native frame (1 = every frame, as the method uses).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Frames per encoder batch [default: 256 on CUDA, 64 on CPU].")
@click.option("--device", default="auto", show_default=True,
              help="auto | cpu | cuda | cuda:N | cuda:0,cuda:2: one encoder per GPU named "
                   "(auto and cuda: every GPU, else the CPU).")
@click.option("--decoder", type=click.Choice(["auto", "cpu", "nvdec"]), default="auto",
              show_default=True,
              help="Video decoder: nvdec = the GPU's (videos it refuses fall back to the CPU); "
                   "auto = nvdec when encoding on a GPU.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Videos decoded in parallel, one ffmpeg process each [default: CPU cores].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler: one task per video on that cluster (shared filesystem). "
                   "[default: run here, no cluster]")
@_label_options(required=False)
@_wait_option
@user_errors
def extract(videos_dir, out, model, stride, batch_size, device, decoder, workers, scheduler,
            dataset, annotations, val_fraction, val_seed, allow_missing, wait,
            labels):
    """Decode every video in --videos and store its CLIP frame embeddings.

    With --dataset and --annotations the stored videos are labelled at the end (as
    `pipeline label` does); the annotations are read first, so a bad line fails at once.
    """
    from extract import extract_videos

    result = extract_videos(videos_dir, out=out, model=model, stride=stride,
                            batch_size=batch_size, device=device, workers=workers,
                            scheduler=scheduler, decoder=decoder, wait=wait, dataset=dataset,
                            annotations=annotations, labels=labels, val_fraction=val_fraction,
                            val_seed=val_seed, allow_missing=allow_missing)
    click.echo(result.summary())
    sys.exit(1 if result.failed else 0)


@cli.command()
@click.argument("features_file", type=click.Path(), required=False)
@click.option("--schema", is_flag=True,
              help="Print every name a feature file may hold, with what it means, instead.")
@click.option("--verify", is_flag=True,
              help="Also read every row of every video, checking its checksums; exit 2 "
                   "naming the damaged videos.")
@user_errors
def info(features_file, schema, verify):
    """Describe a feature file: model, videos, frames, dims, labels."""
    if schema:
        from features.schema import markdown

        click.echo(markdown())
        return
    from features.describe import describe, verify_file

    path = features_file or paths.default_features()
    click.echo(describe(path))
    if verify:
        found = verify_file(path)
        click.echo("\n".join(found.lines()))
        if found.error() is not None:
            raise found.error()


# ---------------------------------------------------------------- datasets: label / import
@cli.command()
@click.argument("features_file", type=click.Path(), required=False)
@_label_options
@_wait_option
@user_errors
def label(features_file, dataset, annotations, val_fraction, val_seed, allow_missing,
          wait, labels):
    """Attach split, class and anomalous intervals from a dataset's annotations to a feature file."""
    from features.datasets import label_store

    summary = label_store(features_file or paths.default_features(), dataset, annotations,
                          val_fraction=val_fraction, val_seed=val_seed,
                          allow_missing=allow_missing, wait=wait, labels=labels)
    click.echo(str(summary))


@cli.command("import")
@click.option("--features-dir", required=True, type=click.Path(),
              help="Folder of .npy features, one per video (or per crop: NAME__0.npy ...), "
                   "searched recursively.")
@click.option("--model", required=True,
              help="The model that produced the features (hub id or local folder); recorded, and "
                   "fingerprinted when it loads here.")
@click.option("--out", type=click.Path(), default=None,
              help="Feature file to write or extend [default: pipeline_out/features.h5].")
@click.option("--crop", default="mean", show_default=True,
              help="Multi-crop features: mean (average), all (keep a crop axis) or a crop number.")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True,
              help="Native frames per feature row (16 for snippet features).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_FPS,
              show_default=True, help="Frame rate assumed for timestamps (not in a .npy).")
@_label_options
@_wait_option
@user_errors
def import_(features_dir, model, out, crop, stride, fps, dataset, annotations, val_fraction,
            val_seed, allow_missing, wait, labels):
    """Build a feature file from features extracted elsewhere (.npy per video), labelled."""
    from extract import import_features

    result = import_features(features_dir, dataset, annotations, model=model, out=out, crop=crop,
                             stride=stride, fps=fps, val_fraction=val_fraction,
                             val_seed=val_seed, allow_missing=allow_missing, wait=wait,
                             labels=labels)
    click.echo(result.summary())


# ---------------------------------------------------------------- stage two: train
@cli.command()
@click.option("--features", type=click.Path(), default=None,
              help="Labelled feature file [default: pipeline_out/features.h5].")
@click.option("--preset", type=click.Choice(PRESETS),
              default=None, help="Published hyper-parameters, or custom: sized to the "
                                 "dataset [default: the store's dataset when it is a paper "
                                 "one, else custom].")
@click.option("--config", "config_file", type=click.Path(), default=None,
              help="YAML or JSON file of settings (keys as in --set).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override one setting, e.g. --set lr=1e-4 --set batch_size=32 (repeatable).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--seed", type=int, default=None, help="Seed of a single run [default: 0].")
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="Several seeds, run as Dask futures.")
@click.option("--sweep", multiple=True, metavar="KEY=V1,V2,...",
              help="Grid over a setting (repeatable; the product of all grids x seeds runs).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler to run on [default: a LocalCluster on this machine].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="LocalCluster workers [default: one per GPU, else per CPU core].")
@click.option("--out", type=click.Path(), default=None,
              help="Runs folder [default: pipeline_out/runs].")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N [default: auto].")
@click.option("--protocol", type=click.Choice(["validated", "reference"]), default=None,
              help="validated: select the best epoch on validation videos (ours); reference: "
                   "the reference's protocol (all training videos, per-epoch schedule, last "
                   "epoch kept) [default: validated].")
@user_errors
def train(features, preset, config_file, settings, epochs, seed, seeds, sweep, scheduler,
          workers, out, device, protocol):
    """Train AnomalyCLIP on a feature file; select checkpoints on the validation split."""
    from train.config import parse_set
    from train.stage import parse_seeds, parse_sweep, train as train_stage

    summary = train_stage(features, preset=preset, config_file=config_file,
                          settings=parse_set(settings), epochs=epochs, seed=seed,
                          seeds=parse_seeds(seeds), sweep=parse_sweep(sweep),
                          scheduler=scheduler, out=out, device=device, workers=workers,
                          protocol=protocol)
    click.echo(summary.format())
    sys.exit(1 if (summary.table["status"] != "ok").any() else 0)


# ---------------------------------------------------------------- evaluate: score / demo
@cli.command()
@click.option("--features", type=click.Path(), default=None,
              help="Feature file to score [default: pipeline_out/features.h5].")
@click.option("--run", type=click.Path(), default=None,
              help="Run folder, or a runs folder (its best run) [default: pipeline_out/runs].")
@click.option("--split", default="test", show_default=True,
              type=click.Choice([*SPLITS, "all"]), help="Videos to score.")
@click.option("--video", type=click.Path(), default=None,
              help="Score one new video file instead: extract it with the run's CLIP first.")
@click.option("--out", type=click.Path(), default=None,
              help="Output folder [default: pipeline_out/scores/<split or video name>].")
@click.option("--csv", is_flag=True, help="Also write the frame table as CSV.")
@click.option("--render", is_flag=True,
              help="With --video: also write an mp4 of the frames next to the score curve.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--no-thumbnails", "no_thumbnails", is_flag=True,
              help="Leave the report without frames from the source videos.")
@user_errors
def score(features, run, split, video, out, csv, render, device, no_thumbnails):
    """Frame scores, metrics and plots for a split, or anomalous intervals of one video."""
    from evaluate import score_split, score_video

    if video:
        if features:
            raise UserError("--video and --features exclude each other: --video extracts "
                            "the file itself")
        result = score_video(video, run=run, out=out, render=render, csv=csv, device=device,
                             thumbnails=not no_thumbnails)
    else:
        if render:
            raise UserError("--render works with --video (one video), not with --split")
        result = score_split(features, run=run, split=split, out=out, csv=csv, device=device,
                             thumbnails=not no_thumbnails)
    click.echo(result.summary())


@cli.command()
@click.argument("scores_dir", type=click.Path())
@click.option("--out", type=click.Path(), default=None,
              help="HTML file to write [default: SCORES_DIR/report.html].")
@click.option("--no-thumbnails", "no_thumbnails", is_flag=True,
              help="Leave the report without frames from the source videos.")
@user_errors
def report(scores_dir, out, no_thumbnails):
    """Render the interactive HTML report of a scoring folder again, from its files."""
    from evaluate.report import summary_line, write_report

    click.echo(summary_line(write_report(scores_dir, out, thumbnails=not no_thumbnails)))


@cli.command()
@click.option("--workdir", type=click.Path(), default=None,
              help="Where everything goes [default: pipeline_out/demo].")
@click.option("--model", default=None,
              help="CLIP hub id or folder [default: the offline tiny CLIP, random weights].")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@user_errors
def demo(workdir, model, device, seed):
    """Generate sample videos, extract, label, train, score: the whole pipeline in minutes."""
    from demo import run_demo

    click.echo(run_demo(workdir, model=model, device=device, seed=seed).summary())


def main():
    try:
        cli()
    finally:              # the command is over: a late Ctrl-C has nothing left to stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
