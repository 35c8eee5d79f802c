"""DDPO (denoising diffusion policy optimization) on a small image model, in numpy: what both twins consume:
the digits data, the DDIM chain as a sampling plan, the rewards, per-prompt reward normalization and the
reward-weighted-regression weights."""
