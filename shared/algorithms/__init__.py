"""Algorithm math both twins consume: PPO coefficients, returns, RWR/AWR/IDQL rules, replay buffers."""
