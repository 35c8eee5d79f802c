"""mkdocs hook: the generated reference pages are filled in at build time from the code (dppo/docs/reference.py),
so the site can never describe a key or an option the code does not have."""

from __future__ import annotations

from typing import Any

MARKERS = {"<!-- generated: config reference -->": "config_reference",
           "<!-- generated: cli reference -->": "cli_reference"}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for marker, name in MARKERS.items():
        if marker in markdown:
            from dppo.docs import reference

            markdown = markdown.replace(marker, getattr(reference, name)())
    return markdown
