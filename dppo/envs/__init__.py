"""Environments for rollouts: env specs, per-phase threads, data collection with a teacher."""
