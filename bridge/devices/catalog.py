"""Driver types the bridge can load: entry points of group `linebridge.drivers`, keyed by type name."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from linebridge.analytics.config import check_signals
from linebridge.config import Config, describe_validation_error
from linebridge.drivers.base import DeviceHost, Driver, DriverContext, DriverOptions
from linebridge.errors import ConfigError, InvalidArgument

log = logging.getLogger(__name__)
GROUP = "linebridge.drivers"


class DriverCatalog:
    """A registry of driver classes with their options validators and the mDNS types they match."""

    def __init__(self, classes: Mapping[str, type[Driver]]) -> None:
        self._classes = dict(classes)

    @classmethod
    def from_entry_points(cls) -> DriverCatalog:
        """Every installed driver; one that fails to import is logged and left out."""
        classes: dict[str, type[Driver]] = {}
        for ep in entry_points(group=GROUP):
            try:
                loaded = ep.load()
            except Exception as exc:
                log.error("driver %r (%s) failed to load: %s", ep.name, ep.value, exc)
                continue
            if not (isinstance(loaded, type) and issubclass(loaded, Driver)):
                log.error("driver %r (%s) is not a Driver subclass", ep.name, ep.value)
                continue
            classes[ep.name] = loaded
        return cls(classes)

    def names(self) -> list[str]:
        """The driver type names, sorted."""
        return sorted(self._classes)

    def get(self, name: str) -> type[Driver]:
        """The driver class of a type name; ConfigError naming the known ones."""
        try:
            return self._classes[name]
        except KeyError:
            raise ConfigError(
                f"unknown driver {name!r} (known: {', '.join(self.names()) or 'none'})"
            ) from None

    def service_types(self) -> dict[str, type[Driver]]:
        """mDNS service type -> the driver that handles it."""
        return {m.service_type: cls for cls in self._classes.values() for m in cls.discovery}

    def options(
        self,
        name: str,
        raw: Mapping[str, Any],
        source: str = "",
        where: str = "options",
        base_dir: Path | None = None,
    ) -> DriverOptions:
        """Validate raw driver options; ConfigError naming the field on failure."""
        driver = self.get(name)
        context = {"config_dir": base_dir} if base_dir is not None else None
        try:
            return driver.options_model.model_validate(dict(raw), context=context)
        except ValidationError as exc:
            prefix = tuple(int(p) if p.isdigit() else p for p in where.split("."))
            raise ConfigError(
                describe_validation_error(source or "config", exc, driver.options_model, prefix)
            ) from None

    def check(self, config: Config, source: str) -> None:
        """Validate every configured device's driver name and options before anything starts."""
        for i, device in enumerate(config.devices):
            if device.driver not in self._classes:
                raise ConfigError(
                    f"{source}: devices[{i}].driver: unknown driver {device.driver!r}"
                    f" (known: {', '.join(self.names()) or 'none'})"
                )
            options = self.options(
                device.driver, device.options, source, f"devices.{i}.options", config.base_dir
            )
            try:
                self._classes[device.driver].check_endpoint(device.endpoint, options)
            except InvalidArgument as exc:
                raise ConfigError(f"{source}: devices[{i}].endpoint: {exc}") from None
            self._check_analytics(config, source, device.id, device.driver, options)

    def _check_analytics(
        self, config: Config, source: str, device_id: str, driver: str, options: DriverOptions
    ) -> None:
        """Analytics rules of a device whose signals are known before connecting (a register map) must name them."""
        known = self._classes[driver].known_signals(options)
        if known is None:
            return
        for glob, analytics in config.analytics.devices.items():
            if fnmatch.fnmatchcase(device_id, glob):
                problem = check_signals(analytics, known)
                if problem:
                    raise ConfigError(
                        f"{source}: analytics.devices[{glob!r}] (device {device_id}): {problem}"
                    )
                return

    def create(
        self, name: str, device_id: str, endpoint: str, options: DriverOptions, host: DeviceHost | None = None
    ) -> Driver:
        """A new driver instance for one device (a gateway driver also gets the host it attaches devices to)."""
        driver = self.get(name)
        logger = logging.getLogger(f"drivers.{name}.{device_id}")
        ctx = DriverContext(device_id, endpoint, options, logger, host)
        return driver(ctx)
