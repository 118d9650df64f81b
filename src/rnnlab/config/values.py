"""Reading and checking config values: one-line errors that name the flag, TOML/JSON values checked
against the fields' types, and the flat TOML file."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from pathlib import Path

from rnnlab.errors import RnnlabError


def flag_name(name: str) -> str:
    """A field name as its command-line flag: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + name.replace("_", "-")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RnnlabError(f"{flag_name(name)} must be one of {', '.join(choices)}; got {value!r}")


def check_number(name: str, value, low=None, high=None, low_open=False, allow_none=False) -> None:
    """Raise a one-line error naming the flag when ``value`` is not a finite number in range."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RnnlabError(f"{flag_name(name)} must be a finite number; got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        raise RnnlabError(
            f"{flag_name(name)} must be {' and '.join(x for x in (lo, hi) if x)}; got {value!r}"
        )


def build(cls, values: dict):
    """``cls(**values)``, every value checked against its field's type (unknown keys refused)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RnnlabError(f"unknown config keys: {', '.join(unknown)}")
    return cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})


def _coerce(name: str, value, hint):
    """Check a TOML/JSON value against the field's type; ints are accepted where floats are."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise RnnlabError(f"{flag_name(name)} must be a list; got {value!r}")
        return tuple(_coerce(name, v, args[0]) for v in value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise RnnlabError(f"{flag_name(name)} must be of type {hint.__name__}; got {value!r}")
    return float(value) if hint is float else value


def load_toml(path: str | Path) -> dict:
    """Read a TOML config file of flat keys (the flags' names, with or without dashes)."""
    import tomllib

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as e:
        raise RnnlabError(f"config file {path} does not exist") from e
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RnnlabError(f"config file {path} is not valid TOML: {e}") from e
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise RnnlabError(f"config file {path}: use flat keys (as the flags), not tables {nested}")
    return data
