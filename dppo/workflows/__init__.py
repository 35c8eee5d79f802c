"""Jobs made of other commands: the main job and `dppo compare`."""
