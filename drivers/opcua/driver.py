"""OPC UA driver: one asyncua client session per device, OPC 40010 robots mapped to Linebridge signals."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.client.ua_session import UaSession

from linebridge.drivers.base import (
    BatchSink,
    CommandKind,
    DeviceDescription,
    DeviceError,
    DiscoveredDevice,
    Driver,
    DriverContext,
    DriverOptions,
    InvalidArgument,
    MdnsMatch,
    MdnsService,
    MethodSpec,
    NotFound,
    ProgressFn,
    Quality,
    SampleBatch,
    Signal,
    StreamHints,
    Unavailable,
    Unsupported,
    Value,
    analytics_file,
)
from linebridge.drivers.opcua.addressing import (
    encode_arg,
    method_address,
    node_id_of,
    opc_tcp_url,
    variant_of,
)
from linebridge.drivers.opcua.browser import AddressSpaceBrowser, Catalog, read_attributes
from linebridge.drivers.opcua.certs import client_application_uri
from linebridge.drivers.opcua.conditions import ConditionWatch
from linebridge.drivers.opcua.conversion import (
    plain,
    sample_of,
    status_name,
)
from linebridge.drivers.opcua.discovery import device_from_service
from linebridge.drivers.opcua.mapping import STOP_METHOD_NAMES, device_kind
from linebridge.drivers.opcua.options import OpcUaOptions
from linebridge.drivers.opcua.security import SecuritySetup, explain_refusals, prepare
from linebridge.drivers.opcua.status import LINK_STATUS, SERVER_INFO
from linebridge.drivers.opcua.streaming import SubscriptionSettings, SubscriptionStream
from linebridge.drivers.tasks import bounded
from linebridge.errors import describe

ANALYTICS_FILE = str(Path(__file__).with_name("analytics.yaml"))


SERVICE_TYPE = "_opcua-tcp._tcp.local."


class OpcUaDriver(Driver):
    """A device behind one OPC UA server: browse on connect, subscribe to stream, read/write/call."""

    type_name = "opcua"
    options_model = OpcUaOptions
    discovery = (MdnsMatch(SERVICE_TYPE),)

    @classmethod
    def check_endpoint(cls, endpoint: str, options: DriverOptions) -> None:
        """InvalidArgument unless `endpoint` has this driver's form."""
        opc_tcp_url(endpoint)

    def __init__(self, ctx: DriverContext) -> None:
        super().__init__(ctx)
        self._client: Client | None = None
        self._catalog = Catalog()
        self._stop_method: MethodSpec | None = None
        self._streams: set[SubscriptionStream] = set()
        self._conditions: ConditionWatch | None = None
        self._lost_reason: str | None = None
        self._setup: SecuritySetup | None = None

    @classmethod
    def from_mdns(cls, service: MdnsService) -> DiscoveredDevice:
        """Endpoint from the SRV record and the TXT `path` (OPC 10000-12 Annex C)."""
        return device_from_service(service)

    @property
    def options(self) -> OpcUaOptions:
        """This device's validated options."""
        return cast(OpcUaOptions, self.ctx.options)

    async def connect(self) -> DeviceDescription:
        """Choose the endpoint, vet the server certificate, open a session, browse and describe the device."""
        await self.close()
        options = self.options
        client = Client(
            opc_tcp_url(self.ctx.endpoint),
            timeout=options.request_timeout,
            watchdog_intervall=options.watchdog_interval,
        )
        client.name = client.description = f"Linebridge {self.device_id}"
        client.application_uri = client_application_uri()
        client.session_timeout = int(options.session_timeout * 1000)
        client.connection_lost_callback = self._on_connection_lost
        self._client, self._lost_reason, self._setup = client, None, None
        try:
            with self._errors("connect to"):
                # GetEndpoints on its own unsecured channel; nothing secret is sent before the trust check.
                self._setup = await prepare(client, options, 2 * options.request_timeout)
                with explain_refusals(self._setup):
                    # connect() is several round trips (hello, channel, session, activate).
                    await bounded(client.connect(), 4 * options.request_timeout)
                return await self._describe(client)
        except BaseException:
            if client.uaclient.state is UaClientState.DISCONNECTED:
                self._client = None  # refused before a session existed: asyncua already closed the socket
            await self.close()
            raise

    async def close(self) -> None:
        """End the session; idempotent, also after a failed connect or a lost link."""
        client, self._client = self._client, None
        for stream in list(self._streams):
            stream.lose("driver closed")
        if client is not None:
            with contextlib.suppress(Exception):
                await bounded(client.disconnect(), self.options.request_timeout)

    def liveness(self, hints: StreamHints) -> float:
        """2 x publishing interval + the keep-alive period (issue 12, risk 2): the server answers a
        publish at least once per keep-alive period (OPC 10000-4 §5.13.1.1), data or not."""
        o = self.options
        keepalive = max(1, math.ceil(o.keepalive_interval / o.publishing_interval)) * o.publishing_interval
        return 2 * o.publishing_interval + keepalive

    def diagnostics(self) -> dict[str, str]:
        """Browse and subscription facts worth showing an integrator."""
        info = {
            "endpoint": self.ctx.endpoint,
            "state": self._client.uaclient.state.value if self._client else "closed",
            "nodes_browsed": str(self._catalog.node_count),
            "browse_truncated": str(self._catalog.truncated).lower(),
            "signals": str(len(self._catalog.signals)),
            "methods": str(len(self._catalog.methods)),
        }
        if self._setup is not None:
            info["security"] = self._setup.label
            if self._setup.client_certificate is not None:
                info["server_certificate"] = f"{self._setup.server_thumbprint} ({self._setup.trust})"
                info["client_certificate"] = self._setup.client_certificate.thumbprint
        for index, stream in enumerate(self._streams):
            info[f"subscription_{index}"] = f"id={stream.subscription_id} batches={stream.batches}"
        return info

    async def stream(self, signals: Sequence[Signal], sink: BatchSink, hints: StreamHints) -> None:
        """One subscription for `signals`; raises Unavailable when the link breaks."""
        client = self._require()
        options = self.options
        settings = SubscriptionSettings(
            options.publishing_interval, options.keepalive_interval, options.request_timeout
        )
        stream = SubscriptionStream(
            client.uaclient.session,
            self.device_id,
            signals,
            sink,
            hints,
            settings,
            lambda s: node_id_of(s.address),
            self._link_down,
            self.ctx.logger,
        )
        self._streams.add(stream)
        report = getattr(sink, "alarm", None)  # a sink from before issue 14 takes no alarms
        conditions = ConditionWatch(client.uaclient.session, report or (lambda _r: None), self.ctx.logger)
        try:
            with self._errors("stream from"):
                if options.alarms and report is not None:
                    await conditions.start(options.publishing_interval)
                    self._conditions = conditions
                await stream.run()
        except Unavailable:
            # The session is dead and the driver never reconnects: end it now, or asyncua's publish
            # loop keeps retrying (and logging) every second until the supervisor calls close().
            await self.close()
            raise
        finally:
            self._streams.discard(stream)
            self._conditions = None
            await conditions.stop()

    async def acknowledge_alarm(self, name: str, comment: str) -> None:
        """Call the server's Acknowledge on the condition (OPC UA Part 9 §5.7.3)."""
        if self._conditions is None:
            raise Unavailable(f"no Alarms & Conditions subscription on {self.device_id}")
        with self._errors("acknowledge on"):
            await self._conditions.acknowledge(name, comment)

    async def confirm_alarm(self, name: str, comment: str) -> None:
        """Call the server's Confirm on the condition (OPC UA Part 9 §5.7.4)."""
        if self._conditions is None:
            raise Unavailable(f"no Alarms & Conditions subscription on {self.device_id}")
        with self._errors("confirm on"):
            await self._conditions.confirm(name, comment)

    async def read(self, signals: Sequence[Signal]) -> SampleBatch:
        """Current values of `signals`, one Read request."""
        session = self._session()
        params = ua.ReadParameters(
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[
                ua.ReadValueId(NodeId=node_id_of(s.address), AttributeId=ua.AttributeIds.Value)
                for s in signals
            ],
        )
        with self._errors("read from"):
            results = await session.read(params) if signals else []
        values: list[Value] = []
        qualities: list[int] = []
        stamps: list[int] = []
        for signal, data in zip(signals, results, strict=True):
            value, stamp, quality, _trusted = sample_of(data, signal.value_type)
            values.append(value)
            stamps.append(stamp)
            qualities.append(quality.value)
        kinds = {s.value_type for s in signals}
        return SampleBatch(
            device_id=self.device_id,
            aliases=[s.alias for s in signals],
            values=values,
            timestamps=stamps,
            qualities=None if all(q == Quality.GOOD for q in qualities) else qualities,
            value_type=kinds.pop() if len(kinds) == 1 else None,
        )

    async def write(self, writes: Sequence[tuple[Signal, Value]]) -> None:
        """Write every value as its node's exact data type, in one Write request."""
        session = self._session()
        items = [
            ua.WriteValue(
                NodeId=node_id_of(s.address),
                AttributeId=ua.AttributeIds.Value,
                Value=ua.DataValue(variant_of(s, v), StatusCode=None),
            )
            for s, v in writes
        ]
        with self._errors("write to"):
            results = await session.write(ua.WriteParameters(NodesToWrite=items)) if items else []
        refused = [
            f"{s.path}: {status_name(r.value)}"
            for (s, _), r in zip(writes, results, strict=True)
            if not r.is_good()
        ]
        if refused:
            raise DeviceError(f"{self.device_id} refused the write of {'; '.join(refused)}")

    async def call(self, method: MethodSpec, args: Sequence[Value], progress: ProgressFn) -> list[Value]:
        """Call an OPC UA method; its output arguments are the result."""
        session = self._session()
        object_id, method_id = method_address(method)
        input_types = self._catalog.method_inputs.get(method_id.to_string())
        if input_types is None:
            raise NotFound(f"method {method.name} is not offered by {self.device_id}")
        if len(args) != len(input_types):
            raise InvalidArgument(
                f"method {method.name} takes {len(input_types)} argument(s), got {len(args)}"
            )
        variants = [
            encode_arg(method, i, a, t) for i, (a, t) in enumerate(zip(args, input_types, strict=True))
        ]
        request = ua.CallMethodRequest(ObjectId=object_id, MethodId=method_id, InputArguments=variants)
        with self._errors(f"call {method.name} on"):
            result = (await session.call([request]))[0]
        if not result.StatusCode.is_good():
            details = [
                f"{method.inputs[i].name}: {status_name(s.value)}"
                for i, s in enumerate(result.InputArgumentResults or [])
                if not s.is_good()
            ]
            suffix = f" ({', '.join(details)})" if details else ""
            raise DeviceError(f"method {method.name} failed: {result.StatusCode.name}{suffix}")
        progress(1.0, "done")
        return [v for v in (plain(o.Value) for o in result.OutputArguments or []) if v is not None]

    async def stop(self) -> None:
        """Call the device's program stop method (StopProgram / Stop)."""
        if self._stop_method is None:
            raise Unsupported(f"{self.device_id} offers no StopProgram/Stop method")
        await self.call(self._stop_method, [], lambda _fraction, _message: None)

    async def _describe(self, client: Client) -> DeviceDescription:
        options = self.options
        browser = AddressSpaceBrowser(
            client.uaclient.session,
            ua.NodeId.from_string(options.browse_root),
            options.max_browse_depth,
            options.max_nodes,
            self.ctx.logger,
        )
        catalog = await browser.catalog()
        uri, name, vendor, product = await self._server_info(client)
        self._catalog = catalog
        by_name = {m.name.rsplit("/", 1)[-1]: m for m in catalog.methods if not m.inputs}
        self._stop_method = next((by_name[n] for n in STOP_METHOD_NAMES if n in by_name), None)
        commands = set()
        if any(s.access.writable for s in catalog.signals):
            commands.add(CommandKind.WRITE)
        if catalog.methods:
            commands.add(CommandKind.INVOKE)
        if self._stop_method is not None:
            commands.add(CommandKind.STOP)
        return DeviceDescription(
            kind=device_kind(catalog.object_paths),
            vendor=catalog.identity.get("vendor", vendor),
            model=catalog.identity.get("model", product),
            serial_number=catalog.identity.get("serial_number", ""),
            identity=uri,
            name=name,
            signals=catalog.signals,
            methods=catalog.methods,
            commands=frozenset(commands),
            analytics=analytics_file(ANALYTICS_FILE),
        )

    async def _server_info(self, client: Client) -> tuple[str, str, str, str]:
        """ApplicationUri, ApplicationName, BuildInfo manufacturer and product name of the server."""
        data = await read_attributes(
            client.uaclient.session, [(ua.NodeId(i), ua.AttributeIds.Value) for i in SERVER_INFO]
        )
        raw = [d.Value.Value if d.Value is not None and d.StatusCode.is_good() else None for d in data]
        # OPC 10000-5 §6.3.1: ServerArray[0] is this server's ApplicationUri.
        uri = str(raw[0][0]) if isinstance(raw[0], list) and raw[0] else ""
        manufacturer, product = (str(plain(r) or "") for r in raw[1:])
        # The endpoint description (GetEndpoints before connecting) names the application.
        setup = self._setup
        if setup is not None:
            return setup.server_uri or uri, setup.server_name, manufacturer, product
        return uri, "", manufacturer, product

    def _require(self) -> Client:
        if self._client is None:
            raise Unavailable(f"{self.device_id} is not connected")
        return self._client

    def _session(self) -> UaSession:
        return self._require().uaclient.session

    def _link_down(self) -> str | None:
        if self._lost_reason is not None:
            return self._lost_reason
        if self._client is None:
            return "driver closed"
        state = self._client.uaclient.state
        return None if state is UaClientState.CONNECTED else f"client {state.value}"

    async def _on_connection_lost(self, exc: Exception) -> None:
        """asyncua's connection supervisor found the transport dead (socket closed or probe failed)."""
        self._lost_reason = f"connection lost: {describe(exc, self.options.request_timeout)}"
        for stream in list(self._streams):
            stream.lose(self._lost_reason)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate asyncua/transport exceptions into Linebridge errors, once, here."""
        where = f"{action} {self.device_id} ({self.ctx.endpoint})"
        try:
            yield
        except ua.UaStatusCodeError as exc:
            code = exc.code if isinstance(exc.code, int) else ua.StatusCodes.BadUnexpectedError
            error = Unavailable if code in LINK_STATUS else DeviceError
            raise error(f"cannot {where}: {status_name(code)}") from exc
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            raise Unavailable(f"cannot {where}: {describe(exc, self.options.request_timeout)}") from exc
