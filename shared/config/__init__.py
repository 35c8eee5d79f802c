"""Reading YAML configs (OmegaConf, upstream resolvers, overrides) and typed dataclasses from the resolved mapping."""
