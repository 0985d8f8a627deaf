"""The shop's pages as text, in WebShop's ``text`` observation mode: segments joined by `` [SEP] ``.

Every page but the last starts with the instruction (``WebShop [SEP] Instruction: [SEP] …`` on the
search page, ``Instruction: [SEP] …`` elsewhere), then its segments in page order. A page is a
:class:`Page`: its text and its clickables (the exact texts ``click[...]`` accepts, matched without
regard to case). The layouts follow WebShop's:

- search: ``… [SEP] Search`` (only ``search[...]`` acts here);
- results: ``Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] <asin> [SEP]
  <title> [SEP] $<price> …`` (10 a page; ``< Prev`` from page 2, ``Next >`` while more remain);
- item: ``Back to Search [SEP] < Prev [SEP] <group> [SEP] <value> … [SEP] <title> [SEP] Price:
  $<price> [SEP] Rating: <stars> [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now``;
  once options are chosen a ``Selected: size: large, color: navy`` segment follows the rating
  (WebShop marks chosen options in its rich text mode);
- description / features / reviews: ``Back to Search [SEP] < Prev [SEP] <content>``;
- done: ``Thank you for shopping with us! [SEP] Purchased [SEP] <asin> [SEP] <title> [SEP]
  Options: … [SEP] Price: $<price>``. Unlike WebShop's end page it does not print the target or the
  score: a reward model reads these observations and must not be handed the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agentcritic.envs.shop.catalogue import Catalogue, Product

SEP = " [SEP] "
BACK = "Back to Search"
PREV = "< Prev"
NEXT = "Next >"
BUY = "Buy Now"
DESCRIPTION = "Description"
FEATURES = "Features"
REVIEWS = "Reviews"
SUB_PAGES = {DESCRIPTION.lower(): "description", FEATURES.lower(): "features", REVIEWS.lower(): "reviews"}
RESULTS_PER_PAGE = 10
BUTTONS = frozenset(b.lower() for b in (BACK, PREV, NEXT, BUY, DESCRIPTION, FEATURES, REVIEWS))


@dataclass(frozen=True)
class Page:
    """A rendered page: the observation text and what can be clicked on it."""

    kind: str
    text: str
    clickables: tuple[str, ...] = ()


def _head(instruction: str) -> list[str]:
    return ["Instruction:", instruction]


def search_page(instruction: str) -> Page:
    return Page("search", SEP.join(["WebShop", *_head(instruction), "Search"]))


def num_pages(num_results: int) -> int:
    return max(1, -(-num_results // RESULTS_PER_PAGE))


def results_page(instruction: str, catalogue: Catalogue, results: Sequence[int], page_no: int) -> Page:
    """Results page ``page_no`` (0-based) of ``results`` (product indices, best first)."""
    segments = [*_head(instruction), BACK, f"Page {page_no + 1} (Total results: {len(results)})"]
    clickables = [BACK]
    if page_no > 0:
        segments.append(PREV)
        clickables.append(PREV)
    if page_no + 1 < num_pages(len(results)):
        segments.append(NEXT)
        clickables.append(NEXT)
    for index in results[page_no * RESULTS_PER_PAGE:(page_no + 1) * RESULTS_PER_PAGE]:
        product = catalogue[index]
        segments += [product.asin, product.title, f"${product.price:.2f}"]
        clickables.append(product.asin)
    return Page("results", SEP.join(segments), tuple(clickables))


def item_page(instruction: str, product: Product, chosen: Mapping[str, str]) -> Page:
    segments = [*_head(instruction), BACK, PREV]
    clickables = [BACK, PREV]
    for group, values in product.options:
        segments.append(group)
        segments.extend(values)
        clickables.extend(values)
    segments += [product.title, f"Price: ${product.price:.2f}", f"Rating: {product.rating:.1f}"]
    if chosen:
        segments.append("Selected: " + _options_text(product, chosen))
    segments += [DESCRIPTION, FEATURES, REVIEWS, BUY]
    clickables += [DESCRIPTION, FEATURES, REVIEWS, BUY]
    return Page("item", SEP.join(segments), tuple(clickables))


def sub_page(instruction: str, catalogue: Catalogue, product: Product, kind: str) -> Page:
    """The ``description``, ``features`` or ``reviews`` page of ``product``."""
    if kind == "description":
        content = [catalogue.description(product.index)]
    elif kind == "features":
        content = list(product.features)
    elif kind == "reviews":
        content = []
        for stars, title, text in catalogue.reviews(product.index):
            content += [title, f"{stars} out of 5 stars", text]
    else:
        raise ValueError(f"shop: unknown sub-page {kind!r}")
    return Page(kind, SEP.join([*_head(instruction), BACK, PREV, *content]), (BACK, PREV))


def _options_text(product: Product, chosen: Mapping[str, str]) -> str:
    # In the product's group order, whatever the order of the clicks.
    return ", ".join(f"{g}: {chosen[g]}" for g, _ in product.options if g in chosen)


def done_page(product: Product, chosen: Mapping[str, str]) -> Page:
    options = _options_text(product, chosen) or "none"
    segments = ["Thank you for shopping with us!", "Purchased", product.asin, product.title,
                f"Options: {options}", f"Price: ${product.price:.2f}"]
    return Page("done", SEP.join(segments))
