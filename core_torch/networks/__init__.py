"""Network families (MLP, diffusion MLP, critics, Gaussian MLP, layers): modules only, no training."""
