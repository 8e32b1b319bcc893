"""Generated code; run `make protos` to refresh."""
