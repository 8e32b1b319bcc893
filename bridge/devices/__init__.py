"""Devices: driver catalog, discovery, approval, one supervised session per device, and their manager."""

from linebridge.devices.approval import Approvals, Pending
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import Discovery
from linebridge.devices.manager import DeviceManager
from linebridge.devices.sessions import DeviceSession

__all__ = ["Approvals", "DeviceManager", "DeviceSession", "Discovery", "DriverCatalog", "Pending"]
