"""Modbus TCP driver: register maps, coalesced polling, typed writes, and a simulated cell PLC."""
