"""The top of the stack: CLI, configuration, stages, run directory, manifest, errors."""
