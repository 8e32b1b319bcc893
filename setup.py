"""Maps the repository's folders onto one import namespace (issue #11).

`bridge/` installs as `linebridge`, `drivers/` as `linebridge.drivers` and `hil_tests/` as `linebridge.hil`
(the HIL runner behind `linebridge hil run`, issue #17), so a user's site-packages gets no generic
top-level `bridge`, `drivers` or `hil_tests` package. Everything else about the build is in pyproject.toml.
"""

from setuptools import find_packages, setup


def _under(prefix: str, folder: str) -> list[str]:
    return [prefix, *(f"{prefix}.{name}" for name in find_packages(folder))]


setup(
    packages=_under("linebridge", "bridge")
    + _under("linebridge.drivers", "drivers")
    + _under("linebridge.hil", "hil_tests"),
    package_dir={"linebridge": "bridge", "linebridge.drivers": "drivers", "linebridge.hil": "hil_tests"},
)
