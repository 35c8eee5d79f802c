"""Agents and losses, one module per pre-training / fine-tuning algorithm, on shared bases."""
