"""Coverage-guided fuzz targets (atheris) for every decoder that reads bytes from outside the bridge."""
