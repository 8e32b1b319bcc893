"""OPC UA: a driver for OPC 40010 (Robotics) servers and a robot simulator speaking it."""
