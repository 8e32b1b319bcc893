"""The README is the truth: its configuration reference must be a valid config file."""

from __future__ import annotations

from pathlib import Path

import yaml

from linebridge.config import parse_config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_configuration_reference_is_valid(catalog):
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    block = section[section.index("```yaml") + len("```yaml") :]
    config = parse_config(yaml.safe_load(block[: block.index("```")]), "README.md", env={})
    catalog.check(config, "README.md")
    assert config.devices and config.discovery.interfaces == ["127.0.0.1"]


def test_quick_start_is_the_two_make_commands():
    quick = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split("#")[0].strip() for line in quick.split("```sh", 1)[1].split("```", 1)[0].splitlines()
    ]
    assert [c for c in commands if c] == ["make demo", "make test"]
