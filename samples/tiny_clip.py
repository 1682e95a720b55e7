"""A small randomly initialised CLIP that needs no download, for the demo, tests and
benchmarks (no stage needs it: they load whatever CLIP they are given).

It has the real architecture (transformers ``CLIPModel``) at a tiny width, projection
dim 512 like ViT-B/16, and a byte-level tokenizer whose vocabulary is built here
(every byte, with and without the end-of-word marker, no merges), so text still
tokenizes. It is saved with ``save_pretrained`` and loaded by path through
:func:`features.clip_loader.load_clip`, the same code as the real model.
"""
from __future__ import annotations

import logging
from pathlib import Path

from features.safe_write import atomic_write

log = logging.getLogger("pipeline")

TINY_SEED = 0


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes used by GPT-2/CLIP byte-level BPE."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def make_tiny_clip(path: str | Path, seed: int = TINY_SEED, vision_width: int = 64,
                   vision_layers: int = 2) -> Path:
    """Write the tiny CLIP to ``path`` (skipped when already there) and return the path.
    ``vision_width`` / ``vision_layers`` shrink the image tower further (benchmarks use a
    near-free encoder of width 16, one layer)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        return path
    tokenizer, vocab = _byte_tokenizer()
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                         bos_token_id=vocab[bos], eos_token_id=vocab[eos], pad_token_id=vocab[eos]),
        vision_config=dict(hidden_size=vision_width, intermediate_size=2 * vision_width,
                           num_hidden_layers=vision_layers, num_attention_heads=4,
                           image_size=224, patch_size=32),
        projection_dim=512)
    torch.manual_seed(seed)
    _save(CLIPModel(config).eval(), tokenizer, path)
    log.info("wrote offline tiny CLIP (random weights, projection dim 512) to %s", path)
    return path


def _byte_tokenizer():
    """A CLIP tokenizer over single bytes (no merges): every text tokenizes, no download."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[]), vocab


def _save(model, tokenizer, path: Path) -> None:
    """save_pretrained into a temporary folder, then rename: never a half-written model."""
    from transformers.utils import logging as hf_logging

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    hf_logging.disable_progress_bar()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)          # an incomplete earlier copy at ``path`` is replaced


def make_random_vit_b16(path: str | Path, seed: int = TINY_SEED) -> Path:
    """The ViT-B/16 CLIP architecture (as openai/clip-vit-base-patch16) with random weights
    and the byte-level tokenizer: for speed measurements where the hub is out of reach."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    path = Path(path)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        return path
    tokenizer, vocab = _byte_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=512, intermediate_size=2048,
                         num_hidden_layers=12, num_attention_heads=8,
                         max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=16),
        projection_dim=512)
    torch.manual_seed(seed)
    _save(CLIPModel(config).eval(), tokenizer, path)
    return path
