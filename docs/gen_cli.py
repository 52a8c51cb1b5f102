"""The usage text of every ``napari-derotation`` subcommand, for docs/cli.md.

Used two ways:

* as an MkDocs hook (``hooks:`` in ``mkdocs.yml``): the line
  ``<!-- cli-usage -->`` in a page is replaced, at every build, by the
  ``--help`` of the main command and of each subcommand, so the page never
  goes stale;
* as a script, ``python docs/gen_cli.py``, which prints the same Markdown.
"""

from __future__ import annotations

import contextlib
import io
import os

MARKER = "<!-- cli-usage -->"


def _help(argv: list[str]) -> str:
    from napari_derotation.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"          # the same width on every machine
    try:
        parser = build_parser()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            parser.parse_args([*argv, "--help"])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue().rstrip()


def commands() -> list[str]:
    from napari_derotation.cli import _commands

    return [m.NAME for m in _commands()]


def usage_markdown() -> str:
    parts = ["### `napari-derotation`", "", "```text", _help([]), "```", ""]
    for name in commands():
        parts += [f"### `napari-derotation {name}`", "", "```text",
                  _help([name]), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 - hook API
    """MkDocs hook: fill in the usage text where the page asks for it."""
    if MARKER in markdown:
        return markdown.replace(MARKER, usage_markdown())
    return markdown


if __name__ == "__main__":
    print(usage_markdown())
