"""Human-readable description of a feature file (`pipeline info`)."""
from __future__ import annotations

from pathlib import Path

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
        if store.class_names:
            lines.append(f"  {'classes':<16} {', '.join(store.class_names)}")
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
