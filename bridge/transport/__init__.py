"""Goods transport: where loads and AGVs are, and zone events, from the ordinary signals of AGV devices."""
