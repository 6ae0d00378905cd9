"""Reproducing the papers' tables: the six Head × AC variants of a protocol (``omnivad run --variants paper``),
Table 10 across protocols, and ``omnivad reproduce`` (every table a paper's corpus supports, one report)."""
