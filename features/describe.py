"""Human-readable description of a feature file (`pipeline info`)."""
from __future__ import annotations

from pathlib import Path

from .integrity import verify_store
from .store import open_store

_FILE_KEYS = ["model_id", "model_sha256", "model_revision", "embed_dim", "dtype", "stride",
              "preprocessing", "decoder", "source", "package_version", "created_utc", "dataset"]


def describe(path: str | Path) -> str:
    with open_store(path) as store:
        meta = store.metadata()
        lines = [f"{store.path}  ({store.path.stat().st_size / 2**20:.1f} MiB)"]
        lines += [f"  {k:<16} {store.attrs[k]}" for k in _FILE_KEYS if k in store.attrs]
        frames = int(meta["n_rows"].sum()) if len(meta) else 0
        hours = float(meta["duration_s"].fillna(0).sum()) / 3600 if len(meta) else 0.0
        lines.append(f"  {'videos':<16} {len(meta)}   rows {frames:,}   video time {hours:.2f} h")
        lines.append(f"  {'labels':<16} {_where_labels(store)}")
        if store.class_names:
            lines.append(f"  {'classes':<16} {', '.join(store.class_names)}")
        stale = store.stale_labels
        if stale:
            shown = "; ".join(f"{v}: {why}" for v, why in list(stale.items())[:3])
            more = f"; ... (+{len(stale) - 3} more)" if len(stale) > 3 else ""
            lines.append(f"  {'set aside':<16} {len(stale)} videos read as unlabelled until "
                         f"`pipeline label` runs again ({shown}{more})")
        if len(meta) and meta["split"].notna().any():
            counts = meta.fillna({"split": "-", "class_name": "-"}).groupby(
                ["split", "class_name"]).size()
            lines.append("  labels (split / class: videos)")
            lines += [f"    {s:<6} {c:<24} {n}" for (s, c), n in counts.items()]
        if len(meta):
            show = meta[["video_id", "n_rows", "n_frames", "fps", "duration_s", "width", "height",
                         "split", "class_name"]].head(20).fillna({"split": "-", "class_name": "-"})
            lines.append("")
            lines.append(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            if len(meta) > 20:
                lines.append(f"  ... and {len(meta) - 20} more videos")
    return "\n".join(lines)


def _where_labels(store) -> str:
    """Where the labels live, in words."""
    a = store.attrs
    if not store.labels.videos:
        return "none yet (`pipeline label` writes them into /labels of this file)"
    where = "/labels of this file (JSON in slot0/slot1)"
    when = f", {a['labelled_utc']}" if a.get("labelled_utc") else ""
    source = f" from {a['labels_source']}" if a.get("labels_source") else ""
    return (f"{len(store.labels.videos)} videos, {a.get('dataset', '?')}{source}{when}; in "
            f"{where}")


def verify_file(path: str | Path, progress: bool | None = None):
    """Read every row of every video of the file, checking checksums (`pipeline info
    --verify`): an ``integrity.Verified`` (its ``lines()`` to print, its ``error()``)."""
    with open_store(path) as store:
        return verify_store(store, progress)
