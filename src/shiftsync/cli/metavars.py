"""Help that reads like a command's help: `--tables TEXT`, `--workspace PATH`, a flag alone.

Typer (0.29) labels a value by its Python annotation: `<list[str]>`, `<path>`, and, in the
rich help, `<bool>` beside flags that take no value at all. `TidyGroup`, the root command's
class, gives every option that names no metavar of its own a plain one, once, when the command
tree is built, so `--help`, `-h` and docs/cli.md all show the same.
"""

from __future__ import annotations

from typing import Any, get_args

from typer import Context
from typer.core import TyperCommand, TyperGroup, TyperOption


def plain_metavar(param: object) -> str | None:
    """The metavar an option should show; None to leave it as it is.

    Typer ships its own copy of click and describes a value by its annotation
    (`type_descriptor`), so options are recognised by what they hold, not by class.
    """
    if (
        getattr(param, "param_type_name", "") != "option"
        or getattr(param, "metavar", None) is not None
    ):
        return None
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""  # a flag takes no value: show none
    described = getattr(param, "type_descriptor", None)
    if described is None:
        return None
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices) + "]"
    if described.is_path or described.is_file:
        return "PATH"
    annotation = described.annotation
    if described.is_list:
        (annotation,) = get_args(annotation) or (str,)
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "NUMBER"
    return "TEXT"


def _no_type(ctx: object = None) -> None:
    return None


def tidy(command: TyperCommand | TyperGroup) -> None:
    """Give the options of `command` and of every command under it their plain metavars."""
    for param in getattr(command, "params", ()):
        metavar = plain_metavar(param)
        if metavar is not None:
            param.metavar = metavar
        if getattr(param, "param_type_name", "") == "argument":
            # An argument's name says what it is (`RUN`, `CONNECTION`): no `<str>` after it.
            param.display_type_rich = _no_type
    # The help option is made afresh for each context: tidy it as it is made.
    make_help = getattr(command, "get_help_option", None)
    if make_help is not None and not getattr(make_help, "_tidy", False):

        def get_help_option(ctx: Context) -> TyperOption | None:
            option: TyperOption | None = make_help(ctx)
            if option is not None:
                option.metavar = ""
            return option

        get_help_option._tidy = True  # type: ignore[attr-defined]
        # On this instance only (mypy allows no assignment to a method).
        setattr(command, "get_help_option", get_help_option)  # noqa: B010
    for child in (getattr(command, "commands", None) or {}).values():
        tidy(child)


class TidyGroup(TyperGroup):
    """The root group: tidies the metavars of the whole tree when Typer builds it."""

    def __init__(self, **kwargs: Any) -> None:
        # Typer's own keyword arguments (its __init__ takes no positional one), passed through.
        super().__init__(**kwargs)
        tidy(self)


__all__ = ["TidyGroup", "plain_metavar", "tidy"]
