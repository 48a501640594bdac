"""Mean-pooled llama.cpp embeddings of the bundled model, in a child process."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.engines.embeddings import EmbeddingError, EmbeddingSpec, embed_texts


def test_embeddings_of_the_bundled_model(bundled_path, tmp_path):
    texts = ["The database is down and checkout fails for every customer.",
             "Checkout fails for all customers because the database is down.",
             "Bake the bread for forty minutes until the crust is golden.", ""]
    log = tmp_path / "embeddings.log"
    vectors = embed_texts(EmbeddingSpec(str(bundled_path), max_tokens=32), texts, log_path=log)
    assert vectors.shape == (4, 576) and np.isfinite(vectors).all()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]  # a paraphrase is nearer than another topic
    again = embed_texts(EmbeddingSpec(str(bundled_path), max_tokens=32), texts[:1])
    assert np.allclose(again[0], vectors[0], atol=1e-4)  # deterministic, batch-independent
    assert log.is_file() and "llama" in log.read_text()  # llama.cpp's log, not the terminal


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(EmbeddingError, match="not-a-model.gguf"):
        embed_texts(EmbeddingSpec(str(bogus)), ["hello"], timeout_s=120)
