"""Maps the repository's folders onto one import namespace (issue #11).

`bridge/` installs as `linebridge` and `drivers/` as `linebridge.drivers`, so a user's site-packages gets
no generic top-level `bridge` or `drivers` package. Everything else about the build is in pyproject.toml.
"""

from setuptools import find_packages, setup


def _under(prefix: str, folder: str) -> list[str]:
    return [prefix, *(f"{prefix}.{name}" for name in find_packages(folder))]


setup(
    packages=_under("linebridge", "bridge") + _under("linebridge.drivers", "drivers"),
    package_dir={"linebridge": "bridge", "linebridge.drivers": "drivers"},
)
