"""The web console (`linebridge console`): a browser UI over the public gRPC API, through the client SDK."""
