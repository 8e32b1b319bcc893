"""Protocol drivers: one package per protocol, each with a driver and a simulator."""
