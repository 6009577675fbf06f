"""all-MiniLM-L6-v2 sentence embeddings on ONNX Runtime: `tokenizers` + the exported transformer + mean pooling
and L2 normalisation in numpy — the same recipe as its sentence-transformers pipeline (max 256 tokens), without
importing sentence-transformers, transformers or torch once the graph is cached."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from assetrag.embedding.base import l2_normalise
from assetrag.embedding.graphs import Exports, GraphSpec, export_torch, session_for, weights_key

PART = "minilm-l6-v2-text"
DIM = 384


def _max_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def text_graph(model_dir: Path, int8: bool = False) -> GraphSpec:
    """The MiniLM transformer graph (input_ids, attention_mask, token_type_ids → last hidden state)."""

    def export(f: BinaryIO) -> None:
        import torch
        from transformers import AutoModel

        from assetrag.embedding._runtime import quiet_transformers

        with quiet_transformers():
            model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
        model.eval()

        def hidden(m: Any, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

        ids = torch.ones((2, 8), dtype=torch.long)
        axes = {"n": 0, "tokens": 1}
        dyn = {k: {v: k2 for k2, v in axes.items()} for k in ("input_ids", "attention_mask", "token_type_ids")}
        dyn["hidden"] = {0: "n", 1: "tokens"}
        export_torch(
            model,
            hidden,
            (ids, ids, torch.zeros_like(ids)),
            f,
            ["input_ids", "attention_mask", "token_type_ids"],
            ["hidden"],
            dyn,
        )

    files = [model_dir / "model.safetensors", model_dir / "config.json"]
    return GraphSpec(PART, weights_key([p for p in files if p.exists()]), export, int8=int8)


class MiniLMOnnx:
    """Texts → (n, 384) float32 L2-normalised all-MiniLM-L6-v2 embeddings on an ONNX Runtime session."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        cache_dir: str | os.PathLike[str],
        *,
        threads: int,
        int8: bool,
        exports: Exports,
    ) -> None:
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        self.int8 = int8
        self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(_max_length(self.model_dir))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text of a batch
        self._session = session_for(text_graph(self.model_dir, int8), cache_dir, threads, exports)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n, 384) float32, L2-normalised; batches hold texts of similar length (less padding)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start : start + batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in enc], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
        types = np.asarray([e.type_ids for e in enc], dtype=np.int64)
        with self._lock:
            (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return l2_normalise(pooled)
