"""What every config section shares: strict models, and file paths relative to the config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every config model: an unknown key is an error, so a typo is caught at load."""

    model_config = ConfigDict(extra="forbid")


def relative_to_config(path: str | Path, base_dir: Path | None) -> Path:
    """`path` with `~` expanded; a relative one is taken from the config file's folder when there is one.

    Without a config file (base_dir None) a relative path stays relative to the working directory.
    ValueError when `~user` names a user this machine does not know.
    """
    try:
        p = Path(path).expanduser()
    except RuntimeError:  # "~someone/..." for a user this machine does not know
        raise ValueError(f"{str(path)!r}: cannot expand the home directory") from None
    return p if p.is_absolute() or base_dir is None else base_dir / p
