"""Framework-neutral numpy code: the single source of truth both cores consume.

No module in this package may import torch or tensorflow.
"""
