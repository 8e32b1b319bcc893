"""scripts/ensure_broker.sh, which `make test` runs first: use a broker, install one, or fail fast in one line."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ensure_broker.sh"
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
APT = "apt-get update && apt-get install -y --no-install-recommends mosquitto"


def shared_dir(name: str) -> Path:
    """A fresh directory another user can look into (pytest's tmp_path is private to us)."""
    path = Path(tempfile.mkdtemp(prefix=f"linebridge-{name}-"))
    path.chmod(0o755)
    return path


def as_unprivileged(command: list[str]) -> list[str]:
    """Run as a user without root and without password-less sudo (skips where that cannot be arranged)."""
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot drop to an unprivileged user")
        return [runuser, "-u", "nobody", "--", *command]
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        pytest.skip("this user has password-less sudo: the script would install instead of failing")
    return command


def run(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.fixture
def places() -> Iterator[tuple[Path, Path]]:
    """(an empty directory to search for mosquitto, an os-release file saying Debian), both world-readable."""
    empty = shared_dir("empty")
    etc = shared_dir("etc")
    (etc / "os-release").write_text(DEBIAN)
    (etc / "os-release").chmod(0o644)
    yield empty, etc / "os-release"
    shutil.rmtree(empty)
    shutil.rmtree(etc)


def test_without_a_broker_an_unprivileged_user_gets_one_line_with_the_command_fast(places):
    if shutil.which("apt-get") is None:
        pytest.skip("the Debian branch needs apt-get on this machine")
    empty, os_release = places
    env = {"LINEBRIDGE_MOSQUITTO_SEARCH": str(empty), "LINEBRIDGE_OS_RELEASE": str(os_release)}
    # a copy the unprivileged user can read wherever the checkout is (a fresh clone may be in a private dir)
    scripts = shared_dir("scripts")
    shutil.copytree(ROOT / "scripts", scripts, dirs_exist_ok=True)
    try:
        done, seconds = run(as_unprivileged(["sh", str(scripts / SCRIPT.name)]), env)
    finally:
        shutil.rmtree(scripts)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert APT in lines[0] and "mosquitto" in lines[0]
    assert lines[0].split("install it with: ", 1)[1] in (f"sudo sh -c '{APT}'", f"su -c '{APT}'")
    assert seconds < 10  # the bound: fail within 10 s, before any test runs


def test_make_test_stops_before_the_venv_and_any_test(places):
    if shutil.which("make") is None or shutil.which("apt-get") is None:
        pytest.skip("needs make and apt-get")
    empty, os_release = places
    # A copy without .venv: had make built the venv or started pytest, this would take minutes and say so.
    work = shared_dir("repo")
    for name in ("Makefile", "pyproject.toml", "scripts"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
    env = {"LINEBRIDGE_MOSQUITTO_SEARCH": str(empty), "LINEBRIDGE_OS_RELEASE": str(os_release)}
    try:
        done, seconds = run(as_unprivileged(["make", "-s", "-C", str(work), "test"]), env)
        ours = [line for line in done.stderr.splitlines() if not line.startswith(("make: ", "make["))]
        assert done.returncode != 0
        assert len(ours) == 1 and APT in ours[0], done.stderr
        assert "pytest" not in done.stdout + done.stderr and not (work / ".venv").exists()
        assert seconds < 10
    finally:
        shutil.rmtree(work)


def test_fedora_gets_the_dnf_command(places):
    empty, os_release = places
    os_release.write_text('NAME="Fedora Linux"\nID=fedora\n')
    env = {"LINEBRIDGE_MOSQUITTO_SEARCH": str(empty), "LINEBRIDGE_OS_RELEASE": str(os_release)}
    done, _ = run(["sh", str(SCRIPT)], env)
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "make test needs the Mosquitto MQTT broker (its uplink tests run a real one); "
        "install it with: sudo dnf install -y mosquitto"
    ]


def test_a_broker_found_is_used_and_nothing_is_installed(tmp_path, places):
    _, os_release = places
    (tmp_path / "bin").mkdir()
    binary = tmp_path / "bin" / "mosquitto"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    env = {
        "LINEBRIDGE_MOSQUITTO_SEARCH": f"{tmp_path / 'nothing'}:{binary.parent}",
        "LINEBRIDGE_OS_RELEASE": str(os_release),
    }
    done, _ = run(["sh", str(SCRIPT)], env)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{binary}\n", "")


def test_as_root_on_debian_it_runs_apt_get_itself(tmp_path, places):
    if os.geteuid() != 0:
        pytest.skip("the install branch runs as root (or with password-less sudo)")
    empty, os_release = places
    # A recording apt-get (never the real one: this must not change the machine) that "installs" into `empty`.
    fake = tmp_path / "fakebin"
    fake.mkdir()
    calls = tmp_path / "apt-calls"
    apt = fake / "apt-get"
    apt.write_text(
        f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {calls}\n'
        f'case "$*" in *install*) printf "#!/bin/sh\\n" > {empty}/mosquitto; chmod +x {empty}/mosquitto;; esac\n'
    )
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    env = {
        "LINEBRIDGE_MOSQUITTO_SEARCH": str(empty),
        "LINEBRIDGE_OS_RELEASE": str(os_release),
        "PATH": f"{fake}:{os.environ['PATH']}",
    }
    done, _ = run(["sh", str(SCRIPT)], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{empty}/mosquitto\n"
    assert calls.read_text().splitlines() == [
        "noninteractive update -qq",
        "noninteractive install -y -qq --no-install-recommends mosquitto",
    ]
    assert "installing Debian's mosquitto" in done.stderr


def test_the_browser_check_takes_the_same_path_for_chromium(places):
    """scripts/ensure_browser.sh is the same check for Debian's chromium (the browser tests need it)."""
    empty, os_release = places
    os_release.write_text('NAME="Fedora Linux"\nID=fedora\n')
    env = {"LINEBRIDGE_CHROMIUM_SEARCH": str(empty), "LINEBRIDGE_OS_RELEASE": str(os_release)}
    done, seconds = run(["sh", str(ROOT / "scripts" / "ensure_browser.sh")], env)
    assert done.returncode != 0 and seconds < 10
    assert done.stderr.splitlines() == [
        "make test needs a Chromium browser (the web console and HIL report tests run it headless); "
        "install it with: sudo dnf install -y chromium"
    ]
