"""The Python code a saved Keras model would run when loaded, found without loading it.

A ``Lambda`` layer holding a Python ``lambda`` is stored as bytecode that runs when the model is
rebuilt; an object named by a module outside Keras (a custom layer, loss, …) makes the loader
import that module. TF-Keras refuses the first from a ``.keras`` file (safe mode) but runs it
from an ``.h5`` file; :func:`code_in_file` reads the architecture (HDF5 ``model_config``
attribute, or ``config.json`` inside the ``.keras`` zip) and lists both kinds.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

#: Modules a saved object may name without carrying code of its own.
KERAS_MODULES = ("keras", "tf_keras", "builtins")
HDF5_SUFFIXES = (".h5", ".hdf5")


class UnreadableConfig(ValueError):
    """A model file whose architecture cannot be read (so it cannot be checked)."""


def model_config(path: Path) -> Any:
    """The architecture JSON of a ``.keras`` or ``.h5`` file."""
    try:
        if path.suffix.lower() in HDF5_SUFFIXES:
            import h5py

            with h5py.File(path, "r") as f:
                text = f.attrs.get("model_config")
            if text is None:
                raise UnreadableConfig("no model_config attribute (weights only?)")
        else:
            with zipfile.ZipFile(path) as z:
                text = z.read("config.json")
        return json.loads(text)
    except UnreadableConfig:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RecursionError) as e:
        raise UnreadableConfig(str(e).strip().splitlines()[0][:200] if str(e).strip()
                               else type(e).__name__) from None


def _is_keras_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in KERAS_MODULES)


def code_in(config: Any) -> list[str]:
    """What in ``config`` would run code when loaded: ``Lambda layer 'x'`` (a Python lambda)
    or ``'MyLayer' from module 'mine'`` (an import outside Keras)."""
    found: list[str] = []
    stack = [config]
    while stack:  # iterative: a hostile file may nest very deeply
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        inner = node.get("config") if isinstance(node.get("config"), dict) else {}
        if node.get("class_name") == "Lambda" or node.get("function_type") == "lambda":
            name = inner.get("name", node.get("name", "?"))
            found.append(f"Lambda layer {str(name)[:80]!r} (Python code)")
        module = node.get("module")
        if ("class_name" in node and isinstance(module, str) and module
                and not _is_keras_module(module)):
            found.append(f"{str(node['class_name'])[:80]!r} from module {module[:80]!r}")
    return sorted(set(found))


def code_in_file(path: Path) -> list[str]:
    """:func:`code_in` of a model file; :class:`UnreadableConfig` when it has no readable
    architecture."""
    return code_in(model_config(path))
