"""Commands: types, resolution, gates (policy, safety, rate limits), the manager, deadman and jog."""
