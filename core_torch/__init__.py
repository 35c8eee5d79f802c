"""PyTorch twin of the DPPO diffusion policy. Mirrors core_tf/ file for file."""
