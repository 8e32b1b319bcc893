"""Discovery: TXT decoding, junk services ignored, one device per identity, re-announcement moves it."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from linebridge.app import BridgeApp
from linebridge.devices.catalog import DriverCatalog
from linebridge.devices.discovery import decode_txt, instance_of, pick_address
from linebridge.drivers.base import DiscoveredDevice, MdnsMatch, MdnsService
from linebridge.drivers.mdns import Advertiser
from linebridge.drivers.modbus.driver import ModbusDriver
from linebridge.drivers.sim.driver import SimDriver
from linebridge.errors import InvalidArgument
from linebridge.model import DeviceState
from tests.conftest import make_config, wait_for_state
from tests.gates_helpers import eventually

TEST_TYPE = "_lbtest._tcp.local."


class AdvertisedSim(SimDriver):
    """The sim driver, found through mDNS (TXT `signals=` must be a small number)."""

    type_name = "adsim"
    discovery = (MdnsMatch(TEST_TYPE),)

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        raw = service.properties.get("signals", "2")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise InvalidArgument(f"TXT signals={raw!r} is not a number 1-100")
        return DiscoveredDevice(
            device_id=service.instance.lower(),
            endpoint=f"sim://{service.instance}?port={service.port}",
            name=service.instance,
            options={"signals": int(raw)},
        )


def test_decode_txt_drops_junk():
    props = {
        b"path": b"/",
        b"caps": b"DA",
        b"bad": b"\xff\xfe",
        b"\xff": b"x",
        b"ctl": b"a\x00b",
        b"flag": None,
        b"long": b"x" * 300,
    }
    assert decode_txt(props) == {"path": "/", "caps": "DA", "flag": ""}


def test_pick_address_and_instance():
    assert pick_address(["fe80::1", "127.0.0.1"]) == "127.0.0.1"
    with pytest.raises(InvalidArgument):
        pick_address(["0.0.0.0", "224.0.0.251", "junk"])
    assert instance_of("robot-1._opcua-tcp._tcp.local.", "_opcua-tcp._tcp.local.") == "robot-1"


async def test_discovered_device_dedupes_and_moves(caplog):
    # The junk announcement goes to a real driver's TXT rules (Modbus `unit=`), so what is proven is the
    # bridge's handling of a refused announcement: logged once with the driver's reason, never registered.
    catalog = DriverCatalog({"adsim": AdvertisedSim, "modbus": ModbusDriver})
    config = make_config(
        discovery={
            "enabled": True,
            "interfaces": ["127.0.0.1"],
            "advertise": False,
            "auto_approve": [{"service_type": TEST_TYPE}],
        }
    )
    app = BridgeApp(config, catalog)
    await app.start()
    caplog.set_level(logging.WARNING, logger="linebridge.devices.discovery")
    junk_name = f"lbtest-junk-{os.getpid()}"
    junk = Advertiser("_modbus._tcp.local.", junk_name, 7001, {"unit": "lots", "map": "cell-plc"})
    first = Advertiser(TEST_TYPE, "cell-a", 7002, {"signals": "3"})
    moved = Advertiser(TEST_TYPE, "cell-a", 7003, {"signals": "3"})
    try:
        await junk.start()
        await first.start()
        await eventually(
            lambda: any(junk_name in r.getMessage() for r in caplog.records),
            "the junk announcement's warning",
        )
        await wait_for_state(app, "cell-a", DeviceState.ONLINE)
        record = app.registry.get("cell-a")
        assert record.source == "mdns" and record.endpoint.endswith("port=7002")
        assert len([s for s in record.signals if s.startswith("values/")]) == 3
        await first.stop()
        await moved.start()  # the same instance re-announced on a new port
        for _ in range(200):
            if app.registry.get("cell-a").endpoint.endswith("port=7003"):
                break
            await asyncio.sleep(0.02)
        assert app.registry.get("cell-a").endpoint.endswith("port=7003")
        await wait_for_state(app, "cell-a", DeviceState.ONLINE)
        ours = [r.id for r in app.registry if r.endpoint.startswith("sim://")]
        assert ours == ["cell-a"], "one device per identity"
        assert app.registry.find(junk_name) is None, "junk TXT ignored"
        (warning,) = [r.getMessage() for r in caplog.records if junk_name in r.getMessage()]
        assert "unit='lots' is not a number" in warning  # said once, with the driver's reason
    finally:
        for adv in (junk, first, moved):
            await adv.stop()
        await app.stop()
