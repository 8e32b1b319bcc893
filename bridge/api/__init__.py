"""The gRPC API: thin servicers that convert, call the core and convert back.

Import-light on purpose: the client SDK imports `linebridge.api.pb` and `linebridge.api.convert`, and
re-exporting the server here would make every client load the whole bridge. Import `ApiServer` and
`ApiParts` from `linebridge.api.server` / `linebridge.api.services`.
"""
