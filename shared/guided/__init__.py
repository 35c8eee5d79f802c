"""Reward-guided conditional diffusion (the "Diffusion Policy Engine" note): what both twins consume, in
numpy: the benchmark reward, its data, the denoising chain's tables and the reward weight's schedule."""
