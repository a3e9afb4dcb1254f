"""The docs' figures: results files with provenance, and Markdown templates rendered from them.

Layout (see docs/src/README.md):

- ``results/*.json`` (committed): what the heavy targets measured, each with a ``provenance`` block
  (``provenance.record`` writes it; ``make test`` never does).
- ``docs/src/*.md.j2``: the Markdown sources; ``render.render_all`` turns them into ``docs/*.md``
  with values from ``results.load`` and ``config.configured``, formatted by ``filters``.
- ``numbers.unmarked_numbers``: every number of a rendered page that no placeholder produced.
"""
