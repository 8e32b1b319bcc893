"""The hash-chained audit log: records, the chain, rotation and budget."""
