"""Leaving and entering the project: SavedModel export, upstream checkpoint import."""
