"""Application layer: the `dppo` command wiring shared/ to core_torch/ and core_tf/."""

__version__ = "0.1.0"
