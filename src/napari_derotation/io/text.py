"""Text files a user writes (configs, metadata, tables), read with bounds.

Every YAML file the package reads goes through :func:`load_yaml`: the file
is at most :data:`MAX_BYTES`, its anchors and aliases may not expand into
more than :data:`MAX_NODES` values, it may nest at most :data:`MAX_DEPTH`
levels, and only plain YAML types are built (the safe loader: a
``!!python`` tag is refused). Whatever is wrong (not UTF-8, a syntax error, a
refused tag, too big) is one :class:`DerotationError` line naming the file
and, where there is one, the line and column.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DerotationError

__all__ = ["read_text", "load_yaml", "load_toml", "MAX_BYTES", "MAX_NODES", "MAX_DEPTH"]

#: Largest config or metadata file read (bytes).
MAX_BYTES = 1 << 20
#: Most values a YAML document may hold once its aliases are expanded.
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings in a YAML or TOML document.
MAX_DEPTH = 64


def read_text(path, what: str = "file", *, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path`` (at most ``max_bytes``); one line if not."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise DerotationError(
            f"{what} {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    if len(data) > max_bytes:
        raise DerotationError(
            f"{what} {path}: expected at most {max_bytes} bytes; the file is larger"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DerotationError(
            f"{what} {path}: expected UTF-8 text; byte {exc.start} "
            f"(0x{data[exc.start]:02x}) is not"
        ) from None


def load_yaml(path, what: str = "config"):
    """The plain data of a YAML file, bounded (see the module docstring)."""
    import yaml

    path = Path(path)
    text = read_text(path, what)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise DerotationError(f"{what} {path}: {_reader_message(exc, text)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path, what)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise DerotationError(f"{what} {path}: {_yaml_message(exc)}") from None
    except yaml.YAMLError as exc:
        raise DerotationError(
            f"{what} {path}: not valid YAML ({_one_line(exc)})"
        ) from None
    except RecursionError:
        raise DerotationError(
            f"{what} {path}: nested too deeply (expected at most {MAX_DEPTH} levels)"
        ) from None
    finally:
        loader.dispose()


def load_toml(path, what: str = "config") -> dict:
    """The data of a TOML file, bounded like :func:`load_yaml`."""
    import tomllib

    path = Path(path)
    text = read_text(path, what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DerotationError(f"{what} {path}: {_one_line(exc)}") from None
    except RecursionError:
        raise DerotationError(
            f"{what} {path}: nested too deeply (expected at most {MAX_DEPTH} levels)"
        ) from None
    _check_depth(data, path, what)
    return data


def _reader_message(exc, text) -> str:
    at = exc.position
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return (
        f"line {line}, column {column}: character #x{exc.character:04x} "
        f"is not allowed in YAML"
    )


def _yaml_message(exc) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "not valid YAML"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    if "constructor for the tag" in problem:
        problem += " (only plain YAML is read: no !!python or other tags)"
    return where + _one_line(problem)


def _one_line(text) -> str:
    return " ".join(str(text).split())


class _TooBig(Exception):
    pass


def _check_size(root, path, what) -> None:
    """Refuse a node graph that expands to more than MAX_NODES values or
    nests deeper than MAX_DEPTH (aliases share nodes: sizes are memoised, so
    this takes time in the number of distinct nodes)."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node, depth):
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise DerotationError(
                f"{what} {path}: line {node.start_mark.line + 1}: nested "
                f"deeper than {MAX_DEPTH} levels"
            )
        if key in active:
            raise DerotationError(
                f"{what} {path}: line {node.start_mark.line + 1}: an alias "
                f"refers to a value that contains it"
            )
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            active.add(key)
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [n for pair in node.value for n in pair]
            )
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_NODES:
                    raise _TooBig
            active.discard(key)
        sizes[key] = total
        return total

    try:
        size(root, 0)
    except _TooBig:
        raise DerotationError(
            f"{what} {path}: its anchors and aliases expand to more than "
            f"{MAX_NODES} values (an alias bomb?); refused"
        ) from None


def _check_depth(data, path, what) -> None:
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DerotationError(
                f"{what} {path}: nested deeper than {MAX_DEPTH} levels"
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
