"""The torch-vs-TF comparison: the engine behind `dppo parity` and the report judging it."""
