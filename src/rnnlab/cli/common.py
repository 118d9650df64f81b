"""Flag plumbing shared by the subcommands: config dataclass fields become grouped flags."""

from __future__ import annotations

import argparse
import json
import math
import typing
from dataclasses import MISSING, fields


def _none_or(convert):
    def parse(text: str):
        if text.lower() in ("none", "off"):
            return None
        return convert(text)

    parse.__name__ = convert.__name__
    return parse


def _number(convert):
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        return value

    parse.__name__ = convert.__name__
    return parse


def float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def add_config_flags(
    parser: argparse.ArgumentParser,
    config_cls,
    title: str,
    help_texts: dict[str, str],
    choices: dict[str, tuple[str, ...]] | None = None,
    skip: tuple[str, ...] = (),
    metavars: dict[str, str] | None = None,
) -> None:
    """One flag per dataclass field, ``--field-name``, defaulting to *absent* (argparse.SUPPRESS).

    Absent flags leave the value to the TOML file or the dataclass default, so "flags win" is simply
    "flags are applied last". The help line shows the dataclass default.
    """
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(config_cls)
    choices = choices or {}
    metavars = metavars or {}
    for f in fields(config_cls):
        if f.name in skip:
            continue
        hint, optional = hints[f.name], False
        args = typing.get_args(hint)
        if type(None) in args:
            optional, hint = True, next(a for a in args if a is not type(None))
        default = f.default if f.default is not MISSING else f.default_factory()
        kwargs: dict = {"default": argparse.SUPPRESS, "dest": f.name}
        flag = "--" + f.name.replace("_", "-")
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is tuple:
            if typing.get_args(hint)[0] is float:
                kwargs["type"], kwargs["metavar"] = float_list, metavars.get(f.name, "X,Y,...")
            else:
                kwargs["action"] = "append"
        else:
            convert = _number(hint) if hint in (int, float) else hint
            kwargs["type"] = _none_or(convert) if optional else convert
        if f.name in choices:
            kwargs["choices"] = choices[f.name]
        if default is None or default == ():
            shown = "none"
        else:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        kwargs["help"] = f"{help_texts.get(f.name, '')} (default: {shown})".strip()
        group.add_argument(flag, **kwargs)


def given(args: argparse.Namespace, names) -> dict:
    """The flags among ``names`` that the user actually gave."""
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def print_result(result: dict, as_json: bool, human: str) -> None:
    """The last line of stdout: a JSON object with ``--json``, else a human summary."""
    print(json.dumps(result, ensure_ascii=False) if as_json else human, flush=True)


def positive_int(text: str) -> int:
    value = _number(int)(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value
