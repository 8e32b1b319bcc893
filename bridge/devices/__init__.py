"""Devices: driver catalog, discovery, approval and one supervised session per device."""
