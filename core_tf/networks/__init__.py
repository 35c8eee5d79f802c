"""Network families (MLP, diffusion MLP, critics, Gaussian MLP) and the Keras layers with torch's names they
are built from: modules only, no training."""
