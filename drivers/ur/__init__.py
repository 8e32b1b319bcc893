"""Universal Robots: RTDE telemetry, Dashboard commands and URScript motion, with a simulator."""
