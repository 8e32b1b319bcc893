"""VDA 5050 (2.0 and 2.1): the master-control driver for AGV fleets and a protocol-true fleet simulator."""
