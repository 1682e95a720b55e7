"""Load a Hugging Face CLIP by hub id or local path; the one loader of every stage.

Stage one uses the image tower, stage two the (frozen) text tower of the same model,
so both go through :func:`load_clip`, which also fingerprints the weights so a
feature file can say exactly which model produced it.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import UserError, first_line

log = logging.getLogger("pipeline")

DEFAULT_MODEL = "openai/clip-vit-base-patch16"
IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LoadedClip:
    model: torch.nn.Module          # transformers CLIPModel, eval mode, no grad
    model_id: str                   # what the user passed (hub id or path)
    fingerprint: str                # sha256 of the weights (see weights_fingerprint)
    revision: str                   # hub commit hash when known, else ""
    device: torch.device
    dtype: torch.dtype
    embed_dim: int                  # projection dim (512 for ViT-B/16)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is visible here; use --device "
                        "cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device}: not a device; use auto, cpu, cuda or cuda:N") from None


def default_dtype(device: torch.device) -> torch.dtype:
    """fp32 on CPU; fp16 on CUDA (bf16 where fp16 is unsupported is not a case we meet)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the parameter names, shapes, dtypes and bytes, in name order.

    Independent of where the weights came from (hub cache, local folder, safetensors or
    bin), so two files made with the same weights carry the same fingerprint.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_clip(model_id: str = DEFAULT_MODEL, device: str | torch.device = "cpu",
              dtype: torch.dtype | None = None) -> LoadedClip:
    """Load ``model_id`` (hub id such as ``openai/clip-vit-base-patch16`` or a local folder
    written by ``save_pretrained``) in eval mode on ``device``."""
    from transformers import CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    device = resolve_device(device) if isinstance(device, str) else device
    dtype = dtype or default_dtype(device)
    local = Path(model_id).expanduser()
    source = str(local) if local.exists() else model_id
    if local.exists() and not (local / "config.json").exists():
        raise UserError(f"--model {model_id}: folder has no config.json; pass a folder written by "
                        "save_pretrained or a hub id such as openai/clip-vit-base-patch16")
    try:
        # loaded in the checkpoint's own dtype: the fingerprint does not depend on the device
        model = CLIPModel.from_pretrained(source, attn_implementation="sdpa")
    except OSError as err:
        first = first_line(err)
        raise UserError(f"--model {model_id}: cannot load CLIP ({first}); check the id, your "
                        "network / HF_HUB_OFFLINE, or pass a local folder") from None
    fingerprint = weights_fingerprint(model)
    model.eval().requires_grad_(False).to(device=device, dtype=dtype)
    revision = str(getattr(model.config, "_commit_hash", "") or "")
    embed_dim = int(model.config.projection_dim)
    log.info("CLIP model: %s (%s, sha256 %s..., dim %d, %s on %s)",
             model_id, "local folder" if local.exists() else "hub", fingerprint[:12], embed_dim,
             str(dtype).replace("torch.", ""), device)
    return LoadedClip(model, model_id, fingerprint, revision, device, dtype, embed_dim)
