"""BM25 search over the catalogue, with the maintained ``bm25s`` package (Lucene's BM25 variant).

Tokens: lower case, runs of letters or digits, English stop words dropped, and a small suffix
stemmer (plural ``-s``/``-es``/``-ies``) so that "headphone" finds "headphones". Each product's
document is :meth:`Product.search_fragments` (title, feature bullets, type, category, option
values), tokenised fragment by fragment with a cache.

Results are the top :data:`MAX_RESULTS` (50, as WebShop returns) products with a positive score,
best first; ties are broken by catalogue index, so a query always gives the same list.
Queries are cached per index (agents, the expert and ``restore`` repeat the same few queries).
"""

from __future__ import annotations

import re
from functools import lru_cache

import bm25s
import numpy as np

from agentcritic.envs.shop.catalogue import DEFAULT_PRODUCTS, Catalogue, Product, build_catalogue

MAX_RESULTS = 50
_CACHE_SIZE = 4096
_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have i if in into is it its me my need no not of on "
    "or our so such that the their then there these they this to was we were will with you your "
    "want looking find buy".split()
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small stemmer: plural endings only."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [stem(w) for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]


@lru_cache(maxsize=1 << 17)
def _fragment_tokens(fragment: str) -> tuple[str, ...]:
    return tuple(tokenize(fragment))


def document_tokens(product: Product) -> list[str]:
    return [tok for fragment in product.search_fragments() for tok in _fragment_tokens(fragment)]


class SearchIndex:
    """BM25 over one catalogue. ``search(query)`` gives product indices, best first."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        corpus = [document_tokens(p) for p in catalogue.products]
        self._bm25 = bm25s.BM25()  # Lucene BM25, k1=1.5, b=0.75
        self._bm25.index(corpus, show_progress=False)
        self._vocab: dict[str, int] = self._bm25.vocab_dict
        self._cache: dict[tuple[str, int], tuple[int, ...]] = {}

    def search(self, query: str, k: int = MAX_RESULTS, *, use_cache: bool = True) -> tuple[int, ...]:
        key = (query.strip().lower(), k)
        if use_cache:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        ids = [self._vocab[t] for t in tokenize(key[0]) if t in self._vocab]
        result: tuple[int, ...] = ()
        if ids:
            scores = self._bm25.get_scores(ids)
            result = _top_k(scores, k)
        if use_cache:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = result
        return result

    def rank_of(self, query: str, index: int) -> int | None:
        """0-based position of product ``index`` in the results of ``query`` (None: not shown)."""
        results = self.search(query)
        return results.index(index) if index in results else None


def _top_k(scores: np.ndarray, k: int) -> tuple[int, ...]:
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
        positive = positive[scores[positive] >= kth]
    # Sort by score descending, then by catalogue index, so ties never depend on numpy internals.
    order = np.lexsort((positive, -scores[positive]))
    return tuple(int(i) for i in positive[order][:k])


@lru_cache(maxsize=4)
def build_index(seed: int = 0, num_products: int = DEFAULT_PRODUCTS) -> SearchIndex:
    """The index of catalogue ``(seed, num_products)``; cached like the catalogue."""
    return SearchIndex(build_catalogue(seed, num_products))
