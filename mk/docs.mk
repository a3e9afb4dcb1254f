# The docs: docs/src/*.md.j2 rendered into docs/*.md and docs/diagrams/*.dot (*.dot.j2) into SVG, with figures
# from results/ and values from the configuration (punchclock_tools.docs); `make docs` makes the design PDF of them.
#
# The PDF: pandoc (Markdown to HTML, with the contents) and WeasyPrint (HTML and CSS to PDF: page numbers, the
# contents' page references, SVG diagrams), both from Debian. Debian's weasyprint over PyPI's: PyPI's needs
# Debian's Pango and its fonts all the same, through cffi, so Debian's brings the libraries it was built
# against in one install and leaves the lock alone; 57.2 has every CSS feature design.css uses. pandoc is only
# in Debian (PyPI's "pandoc" wraps the binary); WeasyPrint spares a LaTeX installation.
# graphviz draws the diagrams; its Recommends (fonts-liberation2) is not needed, the sources name DejaVu.
# fonts-dejavu-core: a minbase Debian has no font, and WeasyPrint and dot render text with what fontconfig finds;
# fonts-dejavu-extra: its italic and oblique faces, for emphasis (without them Pango slants the upright ones).
# poppler-utils: tests/docs reads the PDF back (pdftotext) and renders pages (pdftoppm).
DOCS_APT_PACKAGES := pandoc weasyprint graphviz fonts-dejavu-core fonts-dejavu-extra poppler-utils
TEST_APT_PACKAGES += $(DOCS_APT_PACKAGES)
DOCS_BUILD := build/docs

.PHONY: docs docs-md docs-md-check

docs: docs-md ## build build/docs/design.pdf: the design and its appendices, diagrams drawn from docs/diagrams/
	scripts/apt-ensure $(DOCS_APT_PACKAGES)
	$(BIN)/python -m punchclock_tools.docs.pdf $(DOCS_BUILD)/design.pdf

docs-md: dev ## render docs/src/*.md.j2 into docs/*.md and docs/diagrams/ into SVG (figures from results/*.json)
	scripts/apt-ensure graphviz fonts-dejavu-core
	$(BIN)/python -m punchclock_tools.docs

docs-md-check: dev ## fail if a page or diagram in docs/ differs from a fresh render (tests/docs checks the same)
	scripts/apt-ensure graphviz fonts-dejavu-core
	$(BIN)/python -m punchclock_tools.docs --check
