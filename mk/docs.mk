# The docs: docs/src/*.md.j2 rendered into docs/*.md with figures from results/ and values from the configuration
# (punchclock_tools.docs). `make docs` (the PDF of the design, with its diagrams) builds on these pages.
.PHONY: docs-md docs-md-check

docs-md: dev ## render docs/src/*.md.j2 into docs/*.md (figures from results/*.json, values from the configuration)
	$(BIN)/python -m punchclock_tools.docs

docs-md-check: dev ## fail if a page in docs/ differs from a fresh render (tests/docs checks the same)
	$(BIN)/python -m punchclock_tools.docs --check
