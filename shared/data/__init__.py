"""Datasets, D4RL conversion, environments and synthetic data (numpy and gymnasium only)."""
