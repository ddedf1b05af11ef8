"""Load YAML config files into their models, reporting every problem as `file:line:
field: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.config import cross_checks_deferred

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file failed its check; `problems` are lines a person can act on."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key and sequence item."""


# values a config file may expand to (10,000 sites are ~70,000); YAML aliases can multiply them
MAX_VALUES = 2_000_000


def _construct_with_lines(loader: _LineLoader, node: yaml.Node, path: tuple, lines: dict) -> object:
    if len(lines) > MAX_VALUES:
        raise _TooLarge()
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct_with_lines(loader, value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct_with_lines(loader, item, path + (i,), lines)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


class _TooLarge(Exception):
    pass


def load_yaml(path: Path) -> tuple[object, dict[tuple, int]]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:  # a folder where the file should be, no permission to read it
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: YAML syntax: {getattr(exc, 'problem', exc)}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to be a config file"]) from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}
    if node is None:
        return {}, lines
    try:
        return _construct_with_lines(loader, node, (), lines), lines
    except RecursionError:
        raise ConfigError(
            [
                f"{path}: nested too deeply, or a YAML alias (*name) is used inside the block its "
                "anchor (&name) marks"
            ]
        ) from None
    except _TooLarge:
        raise ConfigError(
            [
                f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases repeating "
                "blocks that repeat blocks?)"
            ]
        ) from None


def field_and_message(err: Any, whole: str = "(file)") -> tuple[str, str]:
    """One pydantic error as a person reads it: the dotted field (`whole` for the whole object)
    and the message without pydantic's "Value error, " prefix."""
    field = ".".join(str(p) for p in err["loc"]) or whole
    return field, str(err["msg"]).removeprefix("Value error, ")


def field_messages(error: ValidationError, whole: str = "(entry)") -> list[str]:
    """Every error as `field: message`."""
    return [": ".join(field_and_message(e, whole)) for e in error.errors()]


def problems_from(path: Path, error: ValidationError, lines: dict[tuple, int]) -> list[str]:
    """Turn pydantic errors into `file:line: field: message` lines."""
    problems = []
    for err in error.errors():
        loc = _file_path(tuple(err["loc"]), lines, missing=err["type"] == "missing")
        line = None
        for cut in range(len(loc), -1, -1):  # the deepest location the file has a line for
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        field, message = field_and_message({**err, "loc": loc})
        problems.append(f"{path}:{line or 1}: {field}: {message}")
    return problems


def _file_path(loc: tuple, lines: dict[tuple, int], missing: bool) -> tuple:
    """Drop what pydantic adds that the file does not have (the tag of a tagged union, e.g.
    'threshold')."""
    path: tuple = ()
    for i, part in enumerate(loc):
        if path + (part,) not in lines:
            if i + 1 < len(loc) and path + (loc[i + 1],) in lines:
                continue
            if i + 1 == len(loc) and not missing and path in lines:
                continue  # a check of the whole object, reported at the object
        path += (part,)
    return path


def at_line(path: Path, lines: dict[tuple, int], loc: tuple, message: str) -> str:
    """`file:line: field: message` for a location in the file (the deepest part of it the file
    has a line for)."""
    line = next((lines[loc[:cut]] for cut in range(len(loc), -1, -1) if loc[:cut] in lines), 1)
    field = ".".join(str(p) for p in loc) or "(file)"
    return f"{path}:{line}: {field}: {message}"


def load_checked(path: Path, model: type[M]) -> tuple[M, dict[tuple, int], list[str]]:
    """Load and validate one config file: the model, the file's line map and the problems of its
    cross-checks (each at its line); ConfigError if its fields themselves fail."""
    data, lines = load_yaml(Path(path))
    try:
        with cross_checks_deferred():
            loaded = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(Path(path), exc, lines)) from None
    check = getattr(loaded, "problems", None)
    found = check() if check is not None else []
    return loaded, lines, [at_line(Path(path), lines, loc, message) for loc, message in found]


def load_with_lines(path: Path, model: type[M]) -> tuple[M, dict[tuple, int]]:
    """Load and validate one config file with its cross-checks (every problem at its line), or
    raise ConfigError listing every problem; the model and the file's line map."""
    loaded, lines, problems = load_checked(path, model)
    if problems:
        raise ConfigError(problems)
    return loaded, lines


def load_model(path: Path, model: type[M]) -> M:
    """Load and validate one config file, or raise ConfigError listing every problem."""
    return load_with_lines(path, model)[0]
