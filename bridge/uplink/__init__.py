"""Industrial Cloud uplink: the bridge as a Sparkplug B edge node over MQTT, with store-and-forward."""

from linebridge.uplink.config import UplinkConfig
from linebridge.uplink.service import Uplink
from linebridge.uplink.status import DISABLED, UplinkState, UplinkStatus

__all__ = ["DISABLED", "Uplink", "UplinkConfig", "UplinkState", "UplinkStatus"]
