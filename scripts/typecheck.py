"""Run mypy over the one import package ``soundaq`` from a checkout.

The folders that tell the story (benchmark/, models_zoo/, ...) are subpackages of ``soundaq``
through pyproject's package-dir mapping, which mypy cannot follow. This script lays the package out
as installed, with symbolic links into the checkout, under .cache/typecheck/, runs ``mypy -p soundaq``
there (the configuration in pyproject's ``[tool.mypy]``) and prints mypy's report with the
checkout's own paths. Exit code: mypy's.

    python scripts/typecheck.py [extra mypy options]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(dest: Path) -> dict[str, Path]:
    """Build ``dest/soundaq`` as the installed package would be; returns {staged prefix: checkout folder}."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    package = dest / "soundaq"
    package.mkdir(parents=True, exist_ok=True)
    for old in package.iterdir():
        if old.is_symlink():
            old.unlink()
    prefixes: dict[str, Path] = {}
    for name, folder in mapping.items():
        source = ROOT / folder
        if name == "soundaq":
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (package / entry.name).symlink_to(entry)
            prefixes["soundaq/"] = source
        else:
            sub = name.split(".", 1)[1]
            (package / sub).symlink_to(source, target_is_directory=True)
            prefixes[f"soundaq/{sub}/"] = source
    return prefixes


def main(argv: list[str]) -> int:
    """Stage the package, run mypy on it with ``argv`` as extra options and print its report with checkout paths;
    returns mypy's exit code.
    """
    dest = ROOT / ".cache" / "typecheck"
    prefixes = stage(dest)
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(dest / ".mypy_cache"), "-p", "soundaq", *argv]
    proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, env={**os.environ, "MYPYPATH": str(dest)})
    for line in (proc.stdout + proc.stderr).splitlines():
        for prefix, source in sorted(prefixes.items(), key=lambda kv: -len(kv[0])):
            if line.startswith(prefix):
                line = f"{source.relative_to(ROOT).as_posix()}/{line[len(prefix):]}"
                break
        print(line)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
