"""The gRPC API: thin servicers that convert, call the core and convert back."""
