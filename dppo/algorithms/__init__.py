"""Each algorithm's driver part (trainer) and how its agent is built, declared in the registry."""
