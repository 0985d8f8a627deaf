"""The product catalogue, generated from a seed (WebShop's 1.18M scraped products cannot be fetched).

Products are made in chunks of :data:`CHUNK`, each from its own numpy ``Generator`` keyed by
``(seed, chunk)`` with all of the chunk's random draws made in bulk (50,000 products take a few
seconds). So a catalogue of 5,000 products is the first 5,000 products of the catalogue of 50,000
with the same seed, and a seed gives the same catalogue on every machine. Each product has:

- a product type from :data:`~agentcritic.envs.shop.vocab.PRODUCT_TYPES` (uniformly drawn) and its
  category path ``(department, category, type)``;
- an ASIN-like id (``B0`` + 8 upper-case letters or digits, unique in the catalogue);
- a brand, 3–6 attributes (2–4 of the type's own, 1–2 of its department's), a material where
  the type has some, 1–2 option groups each offering a subset of the group's values (sizes a
  contiguous run, other groups a sample kept in catalogue order), a price in the type's range and
  a rating;
- a title (brand, first attribute, type, material, two more attributes) and feature bullets (one
  per attribute), which with the option values and the category are what search indexes.

Title *nouns* (brand, type words, material words) are kept for WebShop's product-type reward, which
compares the nouns of the bought product's title with those of the goal product's (WebShop uses
spaCy's noun tags; here the generator knows which words are nouns).

Descriptions and reviews are only read when a page shows them, so they are made on demand from a
per-product stream (:meth:`Catalogue.description`, :meth:`Catalogue.reviews`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agentcritic.envs.shop.vocab import (
    BRANDS,
    BRANDS_PER_DEPARTMENT,
    DEPARTMENT_ATTRIBUTES,
    DESCRIPTION_TEMPLATES,
    FEATURE_TEMPLATES,
    OPTION_VALUES,
    PRODUCT_TYPES,
    REVIEW_TEMPLATES,
    REVIEW_TITLES,
    ProductType,
)

MIN_PRODUCTS = 100
DEFAULT_PRODUCTS = 5000
_ASIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DEPARTMENTS = tuple(DEPARTMENT_ATTRIBUTES)
# Option groups whose values are ordered sizes: a product offers a contiguous run of them.
_ORDERED_KEYS = frozenset({
    "apparel_size", "shoe_size", "waist_length", "hair_length", "volume", "food_weight", "bottle",
    "pack", "shelf_size", "sets", "bed_size", "blanket_size", "mug_capacity", "pan_size",
    "container_sets", "clock_size", "curtain_size", "rug_size", "cable_length", "small_pack",
    "tripod_size", "hub_style",
})


CHUNK = 500
_CENTS = (0.99, 0.99, 0.49, 0.95, 0.0)
_MAX_TYPE_ATTRS = max(len(t.attributes) for t in PRODUCT_TYPES)
_MAX_DEPT_ATTRS = max(len(a) for a in DEPARTMENT_ATTRIBUTES.values())
_MAX_GROUPS = max(len(t.options) for t in PRODUCT_TYPES)
_MAX_VALUES = max(len(v) for v in OPTION_VALUES.values())


@dataclass(frozen=True, slots=True)
class Product:
    """One catalogue entry. ``options`` is ``((group, (value, ...)), ...)`` in page order."""

    index: int
    asin: str
    type_index: int
    brand: str
    title: str
    attributes: tuple[str, ...]
    material: str
    options: tuple[tuple[str, tuple[str, ...]], ...]
    price: float
    rating: float
    features: tuple[str, ...]

    @property
    def type(self) -> ProductType:
        return PRODUCT_TYPES[self.type_index]

    @property
    def product_type(self) -> str:
        return PRODUCT_TYPES[self.type_index].name

    @property
    def category(self) -> tuple[str, str, str]:
        t = PRODUCT_TYPES[self.type_index]
        return (t.department, t.category, t.name)

    @property
    def nouns(self) -> frozenset[str]:
        """The title's nouns: brand, product-type words and material words (lower case)."""
        words = [self.brand.lower(), *PRODUCT_TYPES[self.type_index].nouns, *self.material.split()]
        return frozenset(words)

    def option_values(self) -> list[tuple[str, str]]:
        """Every clickable option as ``(group, value)``, in page order."""
        return [(group, value) for group, values in self.options for value in values]

    def search_fragments(self) -> tuple[str, ...]:
        """What the search index reads for this product: title, features, type, category, options.

        Given as fragments (most repeat across products) so tokenising can be cached per fragment.
        """
        t = PRODUCT_TYPES[self.type_index]
        return (self.brand, *self.title[len(self.brand) + 1:].split(", "), *self.features, t.name,
                t.category, *(v for _, vs in self.options for v in vs))

    def search_text(self) -> str:
        return " ".join(self.search_fragments())


class Catalogue:
    """The products of one ``(seed, num_products)``; look-ups by index or by ASIN."""

    def __init__(self, seed: int, products: tuple[Product, ...]) -> None:
        self.seed = seed
        self.products = products
        self.by_asin: dict[str, int] = {p.asin: p.index for p in products}

    def __len__(self) -> int:
        return len(self.products)

    def __getitem__(self, index: int) -> Product:
        return self.products[index]

    def find(self, asin: str) -> Product | None:
        index = self.by_asin.get(asin.strip().upper())
        return None if index is None else self.products[index]

    def description(self, index: int) -> str:
        return _description(self.seed, self.products[index])

    def reviews(self, index: int) -> tuple[tuple[int, str, str], ...]:
        """``(stars, title, text)`` for each review of the product."""
        return _reviews(self.seed, self.products[index])


@lru_cache(maxsize=None)
def _title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _text_rng(seed: int, index: int, salt: int) -> random.Random:
    # One stream per product page (description, reviews), independent of the catalogue size.
    return random.Random(f"{seed}/{index}/{salt}")


def _asin(number: int) -> str:
    chars = []
    for _ in range(8):
        number, digit = divmod(number, 36)
        chars.append(_ASIN_CHARS[digit])
    return "B0" + "".join(chars)


def _chunk(seed: int, chunk: int, taken: set[str]) -> list[Product]:
    """Products ``chunk*CHUNK .. (chunk+1)*CHUNK-1``, with every random draw made in bulk.

    Each chunk has its own numpy stream keyed by (seed, chunk), so catalogues of different sizes
    share their first products.
    """
    g = np.random.default_rng([int(seed) % (1 << 63), chunk])
    n = CHUNK
    type_idx = g.integers(0, len(PRODUCT_TYPES), n).tolist()
    asin_num = g.integers(0, 36**8, n).tolist()
    brand_idx = g.integers(0, BRANDS_PER_DEPARTMENT, n).tolist()
    own_count = g.integers(2, 5, n).tolist()
    own_perm = np.argsort(g.random((n, _MAX_TYPE_ATTRS)), axis=1).tolist()
    shared_count = g.integers(1, 3, n).tolist()
    shared_perm = np.argsort(g.random((n, _MAX_DEPT_ATTRS)), axis=1).tolist()
    material_u = g.random(n).tolist()
    opt_u = g.random((n, _MAX_GROUPS, 2)).tolist()
    opt_perm = np.argsort(g.random((n, _MAX_GROUPS, _MAX_VALUES)), axis=2).tolist()
    price_u = g.random(n).tolist()
    cents = g.integers(0, len(_CENTS), n).tolist()
    rating = np.clip(g.triangular(2.5, 4.4, 5.0, n), 1.0, 5.0).round(1).tolist()
    feature_idx = g.integers(0, len(FEATURE_TEMPLATES), (n, 8)).tolist()

    out = []
    base = chunk * CHUNK
    for k in range(n):
        index = base + k
        ptype = PRODUCT_TYPES[type_idx[k]]
        asin = _asin(asin_num[k])
        if asin in taken:  # about once in 10^4 catalogues of 50k; resolved deterministically
            fallback = random.Random(f"{seed}/{index}/asin")
            while asin in taken:
                asin = _asin(fallback.randrange(36**8))
        taken.add(asin)
        dept = _DEPARTMENTS.index(ptype.department)
        brand = BRANDS[dept * BRANDS_PER_DEPARTMENT + brand_idx[k]].capitalize()
        own = [ptype.attributes[j] for j in own_perm[k] if j < len(ptype.attributes)][: own_count[k]]
        pool = DEPARTMENT_ATTRIBUTES[ptype.department]
        shared = [pool[j] for j in shared_perm[k] if j < len(pool) and pool[j] not in own]
        attributes = tuple(own + shared[: shared_count[k]])
        material = ptype.materials[int(material_u[k] * len(ptype.materials))] if ptype.materials else ""
        options = []
        for gi, (group, key) in enumerate(ptype.options):
            values = OPTION_VALUES[key]
            m = len(values)
            size = m if m <= 3 else 3 + int(opt_u[k][gi][0] * (m - 2))
            if key in _ORDERED_KEYS:
                start = int(opt_u[k][gi][1] * (m - size + 1))
                chosen = values[start:start + size]
            else:
                keep = sorted([j for j in opt_perm[k][gi] if j < m][:size])
                chosen = tuple(values[j] for j in keep)
            options.append((group, tuple(chosen)))
        low, high = ptype.price
        raw = low * (high / low) ** price_u[k]
        price = round(max(1.0, float(int(raw)) + _CENTS[cents[k]]), 2)
        parts = [f"{brand} {_title_case(attributes[0])} {_title_case(ptype.name)}"]
        if material:
            parts.append(_title_case(material))
        parts.extend(_title_case(a) for a in attributes[1:3])
        features = [FEATURE_TEMPLATES[feature_idx[k][j]].format(A=a.capitalize())
                    for j, a in enumerate(attributes)]
        if material:
            features.append(f"Made of {material}")
        out.append(Product(
            index=index,
            asin=asin,
            type_index=type_idx[k],
            brand=brand,
            title=", ".join(parts),
            attributes=attributes,
            material=material,
            options=tuple(options),
            price=price,
            rating=rating[k],
            features=tuple(features),
        ))
    return out


@lru_cache(maxsize=8)
def build_catalogue(seed: int = 0, num_products: int = DEFAULT_PRODUCTS) -> Catalogue:
    """The catalogue for ``(seed, num_products)``; cached, so a rebuilt env costs nothing."""
    if int(num_products) < MIN_PRODUCTS:
        raise ValueError(f"shop: num_products must be at least {MIN_PRODUCTS} (got {num_products})")
    num_products = int(num_products)
    taken: set[str] = set()
    products: list[Product] = []
    for chunk in range(-(-num_products // CHUNK)):
        products.extend(_chunk(seed, chunk, taken))
    return Catalogue(int(seed), tuple(products[:num_products]))


@lru_cache(maxsize=4096)
def _description(seed: int, product: Product) -> str:
    rng = _text_rng(seed, product.index, salt=1)
    t = product.product_type
    material = product.material or "quality materials"
    sentences = [product.title + "."]
    for template in rng.sample(DESCRIPTION_TEMPLATES, 3):
        sentences.append(template.format(t=t, a=rng.choice(product.attributes), m=material))
    return " ".join(s[:1].upper() + s[1:] for s in sentences)


@lru_cache(maxsize=4096)
def _reviews(seed: int, product: Product) -> tuple[tuple[int, str, str], ...]:
    rng = _text_rng(seed, product.index, salt=2)
    out = []
    for _ in range(rng.randint(1, 4)):
        stars = max(1, min(5, round(rng.gauss(product.rating, 0.8))))
        template = rng.choice(REVIEW_TEMPLATES[stars])
        text = template.format(t=product.product_type, a=rng.choice(product.attributes))
        out.append((stars, rng.choice(REVIEW_TITLES[stars]), text))
    return tuple(out)
