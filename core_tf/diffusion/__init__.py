"""The diffusion policy: DiffusionModel (forward noising, reverse chains, log-probabilities) and DDIM eta."""
