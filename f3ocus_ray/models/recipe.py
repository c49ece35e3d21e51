"""The recipe of a pretrained checkpoint folder (`recipe.json`): how it was made, and a content
hash of its weights, config and tokenizer, verified whenever the folder is loaded.

A folder with a recipe whose hashes do not match its files (weights replaced, a tokenizer from
another checkpoint) is refused, naming the file. No torch: the config validates `model.path`.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RECIPE_FILE = "recipe.json"
HASHED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
FORMAT = "f3ocus-pretrained/1"

__all__ = [
    "FORMAT",
    "HASHED_FILES",
    "RECIPE_FILE",
    "RecipeError",
    "content_hash",
    "file_hashes",
    "verify_checkpoint",
    "write_recipe",
]


class RecipeError(ValueError):
    """The folder's files are not those its recipe names (the message names the file)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of each hashed file of `folder`."""
    return {name: _sha256(Path(folder) / name) for name in HASHED_FILES}


def content_hash(hashes: dict[str, str]) -> str:
    """One hash of the files' hashes (the checkpoint's identity)."""
    text = "".join(f"{name}:{hashes[name]}\n" for name in sorted(hashes))
    return hashlib.sha256(text.encode()).hexdigest()


def write_recipe(folder: str | Path, recipe: dict[str, Any]) -> dict[str, Any]:
    """Hash the folder's files and write `recipe.json` (the recipe plus the hashes)."""
    hashes = file_hashes(folder)
    full = {"format": FORMAT, **recipe, "files": hashes, "content_hash": content_hash(hashes)}
    (Path(folder) / RECIPE_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full


def verify_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """The folder's recipe after checking every hashed file against it; None for a folder
    without a recipe (a checkpoint from elsewhere). Raises RecipeError naming the file."""
    folder = Path(folder).expanduser()
    recipe = folder / RECIPE_FILE
    if not folder.is_dir() or not recipe.is_file():
        return None
    stamps = tuple(_stamp(folder / n) for n in (RECIPE_FILE, *HASHED_FILES))
    return _verify(str(folder.resolve()), stamps)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=16)
def _verify(folder: str, stamps: tuple) -> dict[str, Any]:
    """Cached by the files' mtimes and sizes: a config is validated several times per run."""
    path = Path(folder)
    recipe_path = path / RECIPE_FILE
    try:
        recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
        files = recipe["files"]
        expected = {name: str(files[name]) for name in HASHED_FILES}
        stated = str(recipe["content_hash"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise RecipeError(
            f"{recipe_path}: not a readable recipe ({type(e).__name__}: {e})"
        ) from None
    for name in HASHED_FILES:
        file = path / name
        if not file.is_file():
            raise RecipeError(f"{file}: missing (the recipe {recipe_path.name} names it)")
        if _sha256(file) != expected[name]:
            what = (
                "tokenizer does not belong to this checkpoint"
                if name == "tokenizer.json"
                else "content differs"
            )
            raise RecipeError(f"{file}: {what}: its sha256 is not the one in {recipe_path.name}")
    if content_hash(expected) != stated:
        raise RecipeError(f"{recipe_path}: content_hash does not match the file hashes it lists")
    return recipe
