"""Property tests for mDNS announcements through discovery (oracles shared with fuzz/fuzz_txt.py)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zeroconf import ServiceInfo

from fuzz import fuzz_txt as target
from linebridge.devices.discovery import Discovery, decode_txt, device_of
from linebridge.drivers.base import MdnsService
from linebridge.drivers.modbus.driver import ModbusDriver
from linebridge.drivers.opcua.driver import OpcUaDriver
from linebridge.drivers.ur.driver import UrDriver
from linebridge.errors import InvalidArgument

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None)
KEYS = ["unit", "map", "path", "caps", "dashboard", "secondary", "name", "UNIT", "Map", ""]
SPECIAL = [
    "1",
    "0",
    "256",
    "-1",
    " 3",
    "3_0",
    "1&rtde=7",
    "1#x",
    "%31",
    "cell-plc",
    "vfd",
    "../etc/passwd",
    "/ua/robot",
    "no-slash",
    "/a b",
    "LDS,DA",
    "LDS,,",
    "toolongcap",
    "29999",
    "65536",
    "\u0663",
]
instances = st.one_of(
    st.sampled_from(["ur-1", "plc-7", "Robot 1", "a/b", "plc#1", "x+y", " ", "r" * 70, "é"]),
    st.text(max_size=20),
)
addresses = st.lists(
    st.one_of(
        st.binary(min_size=4, max_size=4),
        st.binary(min_size=16, max_size=16),
        st.sampled_from([b"\x7f\x00\x00\x01", b"\xe0\x00\x00\xfb", b"\x00" * 4]),
    ),
    max_size=3,
)
txt_values = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=12))


@st.composite
def txt_records(draw: st.DrawFn) -> bytes:
    """TXT rdata: mostly key=value strings with meaningful keys, sometimes raw bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=60))
    pairs = draw(
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), txt_values, max_size=5)
    )
    strings = [f"{k}={v}".encode() for k, v in pairs.items()] + draw(
        st.lists(st.binary(max_size=8), max_size=2)
    )
    return b"".join(bytes([min(len(x), 255)]) + x[:255] for x in strings)


@FUZZ
@given(
    st.integers(0, len(target.service_types()) - 1),
    instances,
    addresses,
    st.integers(0, 65535),
    txt_records(),
)
def test_announcements_give_a_valid_device_or_are_ignored(
    which: int, instance: str, addrs: list[bytes], port: int, txt: bytes
) -> None:
    service_type, driver = target.service_types()[which]
    target.check_service(service_type, driver, instance, addrs, port, txt)


@FUZZ
@given(st.dictionaries(st.binary(max_size=10), st.one_of(st.none(), st.binary(max_size=300)), max_size=6))
def test_decode_txt_keeps_only_printable_text(properties: dict[bytes, bytes | None]) -> None:
    decoded = decode_txt(properties)
    assert all(k.isprintable() and v.isprintable() and len(v) <= 255 for k, v in decoded.items())
    assert len(decoded) <= len(properties)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_entry_point_on_raw_bytes(data: bytes) -> None:
    target.one_input(data)


def test_seeds_pass() -> None:
    for seed in target.seeds():
        target.one_input(seed)


# --- regressions found by fuzzing -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["1&rtde=7", "1#", "%31", "1?x=1"])
def test_ur_txt_ports_cannot_rewrite_the_endpoint(value: str) -> None:
    """Found by fuzz_txt: TXT dashboard="1&rtde=7" moved the RTDE port away from the SRV port, and "1#"
    or "%31" were accepted as port 1."""
    with pytest.raises(InvalidArgument, match="TXT dashboard port"):
        UrDriver.from_mdns(
            MdnsService("_ur-rtde._tcp.local.", "ur-1", "127.0.0.1", 30004, {"dashboard": value})
        )
    found = UrDriver.from_mdns(
        MdnsService("_ur-rtde._tcp.local.", "ur-1", "127.0.0.1", 30004, {"dashboard": "29990"})
    )
    assert found.endpoint == "ur://127.0.0.1?rtde=30004&dashboard=29990&secondary=30002"


def _info(service_type: str, instance: str, txt: bytes) -> ServiceInfo:
    return ServiceInfo(
        service_type, f"{instance}.{service_type}", port=5020, addresses=[b"\x7f\x00\x00\x01"], properties=txt
    )


@pytest.mark.parametrize("instance", ["Robot 1", "a/b", "plc#1", "x+y", "plc-1 ", "PLC-1", "-plc"])
@pytest.mark.parametrize("driver", [ModbusDriver, UrDriver])
def test_instance_names_that_are_no_device_id_are_ignored(driver: type, instance: str) -> None:
    """Found by fuzz_txt: Modbus and UR used the instance name as the device id unchecked, so an announcement
    named "plc#1" or "a/b" became a device whose id breaks paths ("a/b/signal") and Sparkplug topics ('#')."""
    service_type = driver.discovery[0].service_type
    with pytest.raises(InvalidArgument, match="device id"):
        device_of(
            driver,
            service_type,
            f"{instance}.{service_type}",
            _info(service_type, instance, b"\x0cmap=cell-plc"),
        )


def test_opcua_instance_names_are_still_made_into_ids() -> None:
    service_type = "_opcua-tcp._tcp.local."
    found = device_of(
        OpcUaDriver, service_type, f"Robot 1.{service_type}", _info(service_type, "Robot 1", b"")
    )
    assert found.device_id == "robot-1"


async def test_a_name_zeroconf_refuses_is_ignored_not_a_task_crash(caplog: pytest.LogCaptureFixture) -> None:
    """Found by fuzz_txt: AsyncServiceInfo() raised BadTypeInNameException for a PTR record naming an instance
    with control characters, killing the resolve task with an unretrieved exception."""
    discovery = Discovery(dict(target.service_types()), lambda *found: None, ["127.0.0.1"])
    discovery.zeroconf = object()  # type: ignore[assignment]  # never reached: the name is refused first
    with caplog.at_level(logging.WARNING, logger="linebridge.devices.discovery"):
        await discovery._resolve("_ur-rtde._tcp.local.", "bad\x01name._ur-rtde._tcp.local.")
        await discovery._resolve("_ur-rtde._tcp.local.", "bad\x01name._ur-rtde._tcp.local.")
    assert [r.getMessage() for r in caplog.records].count(
        caplog.records[0].getMessage()
    ) == 1 and "bad\\x01name" in caplog.records[0].getMessage()
