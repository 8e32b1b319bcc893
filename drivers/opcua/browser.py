"""Walk a server's address space once and turn it into signals, methods and identity properties.

Breadth first, one Browse request per level (chunked), then one Read for every attribute needed:
the walk costs a handful of round trips however many nodes the server has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.ua_session import UaSession
from asyncua.ua.uaprotocol_auto import Argument as ArgumentBase  # decoded Arguments are this class

from linebridge.drivers.base import Access, MethodArg, MethodSpec, Signal
from linebridge.drivers.opcua.conversion import BUILTIN_MAX_ID, UA_TYPES, UaType, plain
from linebridge.drivers.opcua.mapping import (
    IDENTITY_RULES,
    compile_pattern,
    generic_path,
    join_browse_path,
    signal_path,
    valid_signal_path,
)

CHUNK = 500  # nodes per Browse/Read request; well below common MaxNodesPerRead/Browse limits
_SUPERTYPE_DEPTH = 10
_A = ua.AttributeIds
_VARIABLE_ATTRIBUTES = (_A.DataType, _A.ValueRank, _A.AccessLevel, _A.UserAccessLevel, _A.Description)
_ARGUMENT_PROPERTIES = ("InputArguments", "OutputArguments")


@dataclass(slots=True)
class BrowsedNode:
    """One node found by the walk."""

    node_id: ua.NodeId
    names: tuple[str, ...]  # browse names below the root, this node's last
    node_class: ua.NodeClass
    is_property: bool
    parent: ua.NodeId

    @property
    def joined(self) -> str:
        """The browse path as one '/'-joined string, for pattern matching."""
        return join_browse_path(self.names)


@dataclass(slots=True)
class Catalog:
    """What the walk found, in Linebridge terms."""

    signals: list[Signal] = field(default_factory=list)
    methods: list[MethodSpec] = field(default_factory=list)
    method_inputs: dict[str, tuple[UaType, ...]] = field(default_factory=dict)  # method id -> input types
    identity: dict[str, str] = field(default_factory=dict)  # "vendor"/"model"/"serial_number" -> value
    object_paths: list[str] = field(default_factory=list)
    node_count: int = 0
    truncated: bool = False


class AddressSpaceBrowser:
    """Browses below `root` up to `max_depth` levels / `max_nodes` nodes through one session."""

    def __init__(
        self, session: UaSession, root: ua.NodeId, max_depth: int, max_nodes: int, logger: logging.Logger
    ) -> None:
        self._session = session
        self._root = root
        self._max_depth = max_depth
        self._max_nodes = max_nodes
        self._log = logger
        self._children: dict[ua.NodeId, dict[str, BrowsedNode]] = {}

    async def catalog(self) -> Catalog:
        """Walk, read the attributes and build the catalog."""
        nodes, truncated = await self._walk()
        for node in nodes:
            self._children.setdefault(node.parent, {})[node.names[-1]] = node
        variables = [n for n in nodes if n.node_class == ua.NodeClass.Variable and not n.is_property]
        methods = [n for n in nodes if n.node_class == ua.NodeClass.Method]
        identity_nodes = self._identity_nodes(nodes)
        attributes, values = await self._read_all(variables, methods, [n for _, n in identity_nodes])
        types = await self._resolve_types(attributes, values)
        catalog = Catalog(node_count=len(nodes), truncated=truncated)
        catalog.object_paths = [n.joined for n in nodes if n.node_class == ua.NodeClass.Object]
        catalog.identity = self._identity(identity_nodes, values)
        catalog.signals = self._signals(variables, attributes, values, types)
        self._methods(catalog, methods, values, types)
        return catalog

    async def _read_all(
        self,
        variables: Sequence[BrowsedNode],
        methods: Sequence[BrowsedNode],
        identity: Sequence[BrowsedNode],
    ) -> tuple[dict[ua.NodeId, list[ua.DataValue]], dict[ua.NodeId, object]]:
        """One read for everything: variable attributes, property values, method descriptions.

        Returns the variables' attribute DataValues and the plain values of properties and methods
        (a method's value is its Description).
        """
        properties = [self._child(v, "EngineeringUnits") for v in variables]
        properties += [self._child(m, name) for m in methods for name in _ARGUMENT_PROPERTIES]
        present = [n for n in [*properties, *identity] if n is not None]
        requests = [(v.node_id, a) for v in variables for a in _VARIABLE_ATTRIBUTES]
        requests += [(n.node_id, _A.Value) for n in present]
        requests += [(m.node_id, _A.Description) for m in methods]
        results = iter(await read_attributes(self._session, requests))
        attributes = {v.node_id: [next(results) for _ in _VARIABLE_ATTRIBUTES] for v in variables}
        values = {n.node_id: _value(next(results)) for n in [*present, *methods]}
        return attributes, values

    async def _walk(self) -> tuple[list[BrowsedNode], bool]:
        found: list[BrowsedNode] = []
        seen = {self._root}
        frontier: list[tuple[ua.NodeId, tuple[str, ...]]] = [(self._root, ())]
        for _ in range(self._max_depth):
            if not frontier:
                break
            references = await browse(self._session, [nid for nid, _ in frontier], _forward_hierarchical)
            next_frontier: list[tuple[ua.NodeId, tuple[str, ...]]] = []
            for (parent, names), refs in zip(frontier, references, strict=True):
                for ref in refs:
                    node = _browsed(ref, parent, names)
                    if node is None or node.node_id in seen:
                        continue
                    seen.add(node.node_id)
                    found.append(node)
                    if len(found) >= self._max_nodes:
                        self._log.warning(
                            "browse stopped at max_nodes=%d; some signals are missing", self._max_nodes
                        )
                        return found, True
                    if not node.is_property:
                        next_frontier.append((node.node_id, node.names))
            frontier = next_frontier
        return found, False

    def _child(self, node: BrowsedNode, name: str) -> BrowsedNode | None:
        return self._children.get(node.node_id, {}).get(name)

    def _identity_nodes(self, nodes: Sequence[BrowsedNode]) -> list[tuple[str, BrowsedNode]]:
        properties = [n for n in nodes if n.is_property]
        found: list[tuple[str, BrowsedNode]] = []
        for rule in IDENTITY_RULES:
            regex = compile_pattern(rule.pattern)
            match = next((n for n in properties if regex.fullmatch(n.joined)), None)
            if match is not None:
                found.append((rule.field, match))
        return found

    @staticmethod
    def _identity(
        identity_nodes: list[tuple[str, BrowsedNode]], values: dict[ua.NodeId, object]
    ) -> dict[str, str]:
        identity: dict[str, str] = {}
        for name, node in identity_nodes:
            value = plain(values.get(node.node_id))
            if name not in identity and value not in (None, ""):
                identity[name] = str(value)
        return identity

    async def _resolve_types(
        self, attributes: dict[ua.NodeId, list[ua.DataValue]], values: dict[ua.NodeId, object]
    ) -> dict[ua.NodeId, UaType | None]:
        """UaType of every DataType in use; derived types are walked up their HasSubtype chain."""
        wanted = {_value(attrs[0]) for attrs in attributes.values()}
        wanted |= {
            arg.DataType
            for v in values.values()
            if isinstance(v, list)
            for arg in v
            if isinstance(arg, ArgumentBase)
        }
        resolved: dict[ua.NodeId, UaType | None] = {}
        pending: dict[ua.NodeId, ua.NodeId] = {}  # original -> current ancestor
        for dtype in wanted:
            if isinstance(dtype, ua.NodeId):
                pending[dtype] = dtype
        for _ in range(_SUPERTYPE_DEPTH):
            for original, current in list(pending.items()):
                if (
                    current.NamespaceIndex == 0
                    and isinstance(current.Identifier, int)
                    and (current.Identifier in UA_TYPES or current.Identifier <= BUILTIN_MAX_ID)
                ):
                    resolved[original] = UA_TYPES.get(current.Identifier)
                    del pending[original]
            if not pending:
                break
            parents = await browse(self._session, list(pending.values()), _supertype)
            for original, refs in zip(list(pending), parents, strict=True):
                if refs:
                    pending[original] = _plain_id(refs[0].NodeId)
                else:
                    resolved[original] = None
                    del pending[original]
        resolved.update(dict.fromkeys(pending))
        return resolved

    def _signals(
        self,
        variables: Sequence[BrowsedNode],
        attributes: dict[ua.NodeId, list[ua.DataValue]],
        values: dict[ua.NodeId, object],
        types: dict[ua.NodeId, UaType | None],
    ) -> list[Signal]:
        signals: list[Signal] = []
        used: set[str] = set()
        for node in variables:
            dtype, rank, level, user_level, description = (_value(dv) for dv in attributes[node.node_id])
            ua_type = types.get(dtype) if isinstance(dtype, ua.NodeId) else None
            access = _access(level, user_level)
            if ua_type is None or rank != ua.ValueRank.Scalar or access is None:
                continue
            preferred, fallback = signal_path(node.names), generic_path(node.names)
            units = self._child(node, "EngineeringUnits")
            eu = values.get(units.node_id) if units is not None else None
            signals.append(
                Signal(
                    path=_unique(preferred, fallback if valid_signal_path(fallback) else preferred, used),
                    value_type=ua_type.value_type,
                    unit=eu.DisplayName.Text or "" if isinstance(eu, ua.EUInformation) else "",
                    access=access,
                    description=description.Text or "" if isinstance(description, ua.LocalizedText) else "",
                    source_type=ua_type.name,
                    address=node.node_id.to_string(),
                )
            )
        return signals

    def _methods(
        self,
        catalog: Catalog,
        methods: Sequence[BrowsedNode],
        values: dict[ua.NodeId, object],
        types: dict[ua.NodeId, UaType | None],
    ) -> None:
        names = [m.names[-1] for m in methods]
        for node in methods:
            inputs_raw, outputs_raw = (
                self._argument_list(node, prop, values) for prop in _ARGUMENT_PROPERTIES
            )
            inputs = [_argument(a, types) for a in inputs_raw]
            outputs = [out for out in (_argument(a, types) for a in outputs_raw) if out is not None]
            if any(i is None for i in inputs):
                self._log.info("method %s skipped: an input argument has no supported type", node.joined)
                continue
            usable = [i for i in inputs if i is not None]
            # The browse name, unless two objects offer a method of that name.
            name = (
                node.names[-1]
                if names.count(node.names[-1]) == 1
                else f"{generic_path(node.names[:-1])}/{node.names[-1]}"
            )
            method_id = node.node_id.to_string()
            catalog.method_inputs[method_id] = tuple(ua_type for _, ua_type in usable)
            catalog.methods.append(
                MethodSpec(
                    name=name,
                    inputs=tuple(arg for arg, _ in usable),
                    outputs=tuple(arg for arg, _ in outputs),
                    description=str(plain(values.get(node.node_id)) or ""),
                    address=(node.parent.to_string(), method_id),
                )
            )

    def _argument_list(self, method: BrowsedNode, prop: str, values: dict[ua.NodeId, object]) -> list[object]:
        node = self._child(method, prop)
        value = values.get(node.node_id) if node is not None else None
        return value if isinstance(value, list) else []


async def browse(
    session: UaSession, node_ids: Sequence[ua.NodeId], describe: Callable[[ua.NodeId], ua.BrowseDescription]
) -> list[list[ua.ReferenceDescription]]:
    """References of every node (following continuation points), one Browse per CHUNK nodes."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(node_ids), CHUNK):
        params = ua.BrowseParameters()
        params.NodesToBrowse = [describe(nid) for nid in node_ids[start : start + CHUNK]]
        for result in await session.browse(params):
            refs = list(result.References)
            point = result.ContinuationPoint
            while point:
                more = (await session.browse_next(ua.BrowseNextParameters(ContinuationPoints=[point])))[0]
                refs.extend(more.References)
                point = more.ContinuationPoint
            out.append(refs)
    return out


async def read_attributes(
    session: UaSession, requests: Sequence[tuple[ua.NodeId, ua.AttributeIds]]
) -> list[ua.DataValue]:
    """Read (node, attribute) pairs, CHUNK per Read request."""
    out: list[ua.DataValue] = []
    for start in range(0, len(requests), CHUNK):
        params = ua.ReadParameters()
        params.TimestampsToReturn = ua.TimestampsToReturn.Neither
        params.NodesToRead = [
            ua.ReadValueId(NodeId=nid, AttributeId=attr) for nid, attr in requests[start : start + CHUNK]
        ]
        out.extend(await session.read(params))
    return out


def _forward_hierarchical(node_id: ua.NodeId) -> ua.BrowseDescription:
    return ua.BrowseDescription(
        NodeId=node_id,
        BrowseDirection=ua.BrowseDirection.Forward,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
        IncludeSubtypes=True,
        NodeClassMask=ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.Method,
        ResultMask=ua.BrowseResultMask.All,
    )


def _supertype(node_id: ua.NodeId) -> ua.BrowseDescription:
    return ua.BrowseDescription(
        NodeId=node_id,
        BrowseDirection=ua.BrowseDirection.Inverse,
        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasSubtype),
        IncludeSubtypes=False,
        NodeClassMask=ua.NodeClass.DataType,
        ResultMask=ua.BrowseResultMask.All,
    )


def _plain_id(expanded: ua.NodeId) -> ua.NodeId:
    return ua.NodeId(expanded.Identifier, expanded.NamespaceIndex)


def _browsed(ref: ua.ReferenceDescription, parent: ua.NodeId, names: tuple[str, ...]) -> BrowsedNode | None:
    target = ref.NodeId
    # Namespace 0 holds the server's own objects (Server, diagnostics), not the device; ServerIndex
    # != 0 points into another server.
    if target.NamespaceIndex == 0 or getattr(target, "ServerIndex", 0):
        return None
    return BrowsedNode(
        node_id=_plain_id(target),
        names=(*names, ref.BrowseName.Name or ""),
        node_class=ref.NodeClass,
        is_property=ref.ReferenceTypeId == ua.NodeId(ua.ObjectIds.HasProperty),
        parent=parent,
    )


def _value(data: ua.DataValue) -> object:
    if data.StatusCode is not None and not data.StatusCode.is_good():
        return None
    return None if data.Value is None else data.Value.Value


def _access(level: object, user_level: object) -> Access | None:
    if not isinstance(level, int):
        return None
    bits = level & user_level if isinstance(user_level, int) else level
    readable = bool(bits & ua.AccessLevel.CurrentRead.mask)
    writable = bool(bits & ua.AccessLevel.CurrentWrite.mask)
    if readable and writable:
        return Access.READ_WRITE
    return Access.READ if readable else Access.WRITE if writable else None


def _argument(arg: object, types: dict[ua.NodeId, UaType | None]) -> tuple[MethodArg, UaType] | None:
    if not isinstance(arg, ArgumentBase) or arg.ValueRank != ua.ValueRank.Scalar:
        return None
    ua_type = types.get(arg.DataType)
    if ua_type is None:
        return None
    description = arg.Description.Text or "" if arg.Description is not None else ""
    return MethodArg(name=arg.Name or "", value_type=ua_type.value_type, description=description), ua_type


def _unique(preferred: str, fallback: str, used: set[str]) -> str:
    """`preferred`, else `fallback` (a second motion device's axes), else `fallback` numbered."""
    for candidate in (preferred, fallback):
        if candidate not in used:
            used.add(candidate)
            return candidate
    number = 2
    while f"{fallback}_{number}" in used:
        number += 1
    used.add(f"{fallback}_{number}")
    return f"{fallback}_{number}"
