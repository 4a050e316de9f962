"""What every layer uses: errors, registries, atomic file writes, the run config, cache paths, progress."""
