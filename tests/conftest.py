"""Fixtures shared by the test files that train or score tiny models."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP spinning against other jobs."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT backbone folder (MiniLM's tokenizer), once per test module."""
    from agentcritic.rm.backbone import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", "bert")


@pytest.fixture
def fed_texts():
    """``fed_texts(model, fn)``: run ``fn()`` and return the texts ``model`` handed its tokenizer as
    single-text inputs, in order: exactly what the model read."""

    def run(model, fn):
        real, seen = model.tokenizer, []

        class Recording:
            def __call__(self, texts, *args, **kwargs):
                if not args and isinstance(texts, list):
                    seen.extend(texts)
                return real(texts, *args, **kwargs)

            def __getattr__(self, name):
                return getattr(real, name)

        model.tokenizer = Recording()
        try:
            fn()
        finally:
            model.tokenizer = real
        return seen

    return run
