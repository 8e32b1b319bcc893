"""linebridge.configbase: the one strict config model and the one "relative to the config file" rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from linebridge.configbase import StrictModel, relative_to_config
from linebridge.drivers.base import DriverOptions


class Section(StrictModel):
    name: str = "x"


def test_a_strict_model_refuses_an_unknown_key_by_name():
    with pytest.raises(ValidationError, match="nmae"):
        Section.model_validate({"nmae": "typo"})


def test_driver_options_are_strict_and_frozen():
    class Options(DriverOptions):
        rate: int = 1

    with pytest.raises(ValidationError, match="rte"):
        Options.model_validate({"rte": 2})
    with pytest.raises(ValidationError, match="frozen"):
        Options().rate = 3


def test_a_relative_path_is_taken_from_the_config_folder(tmp_path):
    assert relative_to_config("var/audit", tmp_path) == tmp_path / "var/audit"


def test_without_a_config_file_a_relative_path_stays_relative():
    assert relative_to_config("var/audit", None) == Path("var/audit")


def test_absolute_and_home_paths_ignore_the_config_folder(tmp_path):
    assert relative_to_config("/etc/x.pem", tmp_path) == Path("/etc/x.pem")
    assert relative_to_config("~/x.pem", tmp_path) == Path.home() / "x.pem"


def test_an_unknown_user_is_a_clear_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot expand the home directory"):
        relative_to_config("~no-such-user-linebridge/x.pem", tmp_path)
