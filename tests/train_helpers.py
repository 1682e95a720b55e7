"""Shared pieces of the stage-two tests: tiny settings and split metrics (the session
synthetic store fixture is in conftest.py)."""
from __future__ import annotations

# Small enough for 2 CPU cores: 8 segments x 4 frames, width 32.
TINY = dict(num_segments=8, seg_length=4, width=32, depth=1, heads=4, batch_size=16,
            lr=1e-3, warmup_epochs=1, device="cpu")


def split_metrics(model, store_path, split: str = "test") -> dict:
    """Row-level AUC / AP / mAUC of ``model`` (eval mode) on one split, via train.validate."""
    from features.store import open_store
    from train.validate import validation_metrics
    from train.windows import MemoryRows

    with open_store(store_path) as store:
        meta = store.metadata()
        meta = meta[meta["split"] == split].reset_index(drop=True)
        source = MemoryRows(store, list(meta["video_id"]))
        frames = {v: store.frame_index(v) for v in meta["video_id"]}
        return validation_metrics(model.eval(), source, meta, frames, store.class_names,
                                  "Normal")
