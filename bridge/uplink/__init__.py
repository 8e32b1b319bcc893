"""Industrial Cloud uplink: the bridge as a Sparkplug B edge node over MQTT, with store-and-forward."""

from bridge.uplink.config import UplinkConfig
from bridge.uplink.service import Uplink
from bridge.uplink.status import DISABLED, UplinkState, UplinkStatus

__all__ = ["DISABLED", "Uplink", "UplinkConfig", "UplinkState", "UplinkStatus"]
