"""The package's one way of loading a public name on first use.

A package's ``__init__`` names what it offers without importing the heavier
modules behind it (scipy's optimisers, dask, Qt), so ``import
napari_derotation`` and the command line start fast::

    __getattr__, __dir__ = lazy_names(__name__, globals(), {"name": "module"})
"""

from __future__ import annotations

import importlib


def lazy_names(package: str, namespace: dict, names: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public
    name to the submodule (relative to ``package``) that defines it."""

    def __getattr__(name: str):
        if name in names:
            module = importlib.import_module(f".{names[name]}", package)
            value = getattr(module, name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
