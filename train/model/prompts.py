"""Class-specific CoOp prompts through CLIP's frozen text tower: the text embeddings T.

Each class c reads ``[SOS] ctx_1 ... ctx_8 <class name> . [EOS]``: 8 learnable context
vectors (init N(0, 0.02)) replace the placeholder words, the class-name tokens and the
period keep CLIP's frozen token embeddings. CLIP's text transformer runs frozen; its text
projection (a copy of CLIP's, initialised from it) is trainable. Output T: (C, D).
With ``direction_init=data`` a trainable per-class shift is added to T (:meth:`add_shift`),
so the directions start from the training data; without it T is the paper's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from features.clip_loader import LoadedClip, load_clip
from features.errors import UserError


@dataclass
class TextTower:
    clip: LoadedClip
    tokenizer: object


def load_text_tower(model_id: str, expected_sha256: str | None, device="cpu",
                    store_path=None) -> TextTower:
    """Load the CLIP recorded in the store (fp32) and check it is the same weights."""
    from transformers import AutoTokenizer

    clip = load_clip(model_id, device=device, dtype=torch.float32)
    if expected_sha256 and clip.fingerprint != expected_sha256:
        raise UserError(
            f"{store_path or 'feature store'}: made with CLIP weights sha256 "
            f"{expected_sha256[:12]}..., but {model_id} has {clip.fingerprint[:12]}...; pass the "
            "model that extracted the features (--set text_model=PATH)")
    local = Path(model_id).expanduser()
    tokenizer = AutoTokenizer.from_pretrained(str(local) if local.exists() else model_id)
    return TextTower(clip, tokenizer)


def prompt_name(class_name: str) -> str:
    """How a class name is read in its prompt: underscores as spaces."""
    return class_name.replace("_", " ")


class FrozenTextEncoder(nn.Module):
    """CLIP's text transformer applied to given token embeddings; pooled at the EOS token."""

    def __init__(self, text_model: nn.Module):
        super().__init__()
        self.position_embedding = text_model.embeddings.position_embedding
        self.layers = text_model.encoder.layers
        self.final_layer_norm = text_model.final_layer_norm
        self.requires_grad_(False)

    def forward(self, token_embeds: torch.Tensor, eos_positions: torch.Tensor) -> torch.Tensor:
        # token_embeds (C, S, W), eos_positions (C,) -> pooled (C, W)
        c, s, _ = token_embeds.shape
        pos = torch.arange(s, device=token_embeds.device)
        h = token_embeds + self.position_embedding(pos)                  # (C, S, W)
        causal = torch.full((s, s), torch.finfo(h.dtype).min, device=h.device).triu(1)
        mask = causal[None, None]                                        # (1, 1, S, S) additive
        for layer in self.layers:
            out = layer(h, mask)
            h = out[0] if isinstance(out, tuple) else out
        h = self.final_layer_norm(h)
        return h[torch.arange(c, device=h.device), eos_positions]       # (C, W)


class PromptLearner(nn.Module):
    """Learnable context vectors + frozen CLIP text tower + trainable text projection -> T."""

    def __init__(self, tower: TextTower, class_names: list[str], n_ctx: int = 8,
                 init_std: float = 0.02):
        super().__init__()
        model, tok = tower.clip.model, tower.tokenizer
        width = model.text_model.embeddings.token_embedding.embedding_dim
        bos, eos = tok.bos_token_id, tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        names = [tok(prompt_name(c) + ".", add_special_tokens=False)["input_ids"]
                 for c in class_names]
        length = 1 + n_ctx + max(len(n) for n in names) + 1
        ids = torch.full((len(names), length), pad, dtype=torch.long)
        eos_positions = torch.empty(len(names), dtype=torch.long)
        for i, name_ids in enumerate(names):
            row = [bos] + [pad] * n_ctx + name_ids + [eos]               # ctx slots filled below
            ids[i, :len(row)] = torch.tensor(row)
            eos_positions[i] = len(row) - 1
        max_len = model.text_model.embeddings.position_embedding.num_embeddings
        if length > max_len:
            raise UserError(f"class name too long for CLIP's {max_len}-token context: "
                            f"{max(class_names, key=len)}")
        device = model.text_model.embeddings.token_embedding.weight.device
        with torch.no_grad():
            frozen = model.text_model.embeddings.token_embedding(ids.to(device)).float()
        self.n_ctx = n_ctx
        self.register_buffer("token_ids", ids, persistent=False)            # (C, S)
        self.register_buffer("token_embeds", frozen, persistent=False)      # (C, S, W)
        self.register_buffer("eos_positions", eos_positions, persistent=False)
        self.ctx = nn.Parameter(torch.randn(len(names), n_ctx, width) * init_std)  # (C, n_ctx, W)
        self.encoder = FrozenTextEncoder(model.text_model)
        proj = model.text_projection.weight                                  # (D, W)
        self.text_projection = nn.Linear(proj.shape[1], proj.shape[0], bias=False)
        with torch.no_grad():
            self.text_projection.weight.copy_(proj.float())
        self.shift = None                                                    # (C, D) or None
        self.to(device)             # ctx and projection beside the frozen tower (CUDA or CPU)

    def add_shift(self, shift: torch.Tensor) -> None:
        """Add a trainable (C, D) offset to T, starting at ``shift``."""
        self.shift = nn.Parameter(shift.to(self.ctx.device, torch.float32).clone())

    def forward(self) -> torch.Tensor:
        # -> T (C, D)
        prefix = self.token_embeds[:, :1]                                    # (C, 1, W) SOS
        suffix = self.token_embeds[:, 1 + self.n_ctx:]                       # (C, S-1-n_ctx, W)
        embeds = torch.cat([prefix, self.ctx, suffix], dim=1)               # (C, S, W)
        pooled = self.encoder(embeds, self.eos_positions)                    # (C, W)
        text = self.text_projection(pooled)                                  # (C, D)
        return text if self.shift is None else text + self.shift
