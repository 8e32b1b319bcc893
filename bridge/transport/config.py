"""The `transport` section of the config file: named zones as polygons per map."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

Polygon = list[tuple[float, float]]


class TransportConfig(BaseModel):
    """Zones for zone events and `linebridge where`: map id -> zone name -> polygon [[x, y], ...] in m."""

    model_config = ConfigDict(extra="forbid")

    zones: dict[str, dict[str, Polygon]] = Field(default_factory=dict)
    # How often AGV positions are checked against the zones.
    interval_seconds: float = Field(0.2, gt=0, le=10)

    @field_validator("zones")
    @classmethod
    def _polygons(cls, value: dict[str, dict[str, Polygon]]) -> dict[str, dict[str, Polygon]]:
        for map_id, zones in value.items():
            for name, polygon in zones.items():
                if len(polygon) < 3:
                    raise ValueError(
                        f"zone {name!r} on map {map_id!r} needs at least 3 points, has {len(polygon)}"
                    )
        return value


def inside(polygon: Polygon, x: float, y: float) -> bool:
    """Whether (x, y) lies inside the polygon (even-odd rule; points on an edge may go either way)."""
    result = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            result = not result
        j = i
    return result
