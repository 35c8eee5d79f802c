"""Checkpoint files in every format the project reads and writes: canonical .npz, torch .pt, TF directories,
and upstream irom-lab/dppo state_<n>.pt imported on the fly."""
