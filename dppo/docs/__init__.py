"""Reference pages of the documentation site generated from the code itself (the typed settings, the
argparse parser), so they cannot drift from it: docs/hooks.py puts them into the pages at build time."""
