"""``shop``: a WebShop-compatible shop over a catalogue generated from a seed.

Modules, one job each: :mod:`.vocab` (the word lists the generator draws from),
:mod:`.catalogue` (products), :mod:`.search` (BM25 with ``bm25s``), :mod:`.goals` (instructions
made from products), :mod:`.reward` (WebShop's reward formula), :mod:`.pages` (the text pages) and
:mod:`.env` (``ShopEnv``). Nothing is imported here so that ``import agentcritic.envs`` stays cheap.
"""
