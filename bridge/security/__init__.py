"""Transport security of the bridge: certificates, tokens, identities and roles, discovery approval."""
