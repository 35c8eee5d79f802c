"""Diffusion tables and per-step coefficients as plain numpy (schedules, sampling plans, eta, exact likelihood)."""
