"""Build the standalone `inferencehub` binary with the PyInstaller pinned in pyproject.toml.

    pip install -e '.[package]'
    python packaging/build.py           # dist/inferencehub (one file) + dist/models
    python packaging/build.py --onedir  # dist/inferencehub-dir/inferencehub + _internal/, models/

The demo models are copied next to the binary: a binary started where there is no ./models
serves the models/ beside it (runtime.default_models_dir). See docs/packaging.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "inferencehub.spec"
INSTALL_HINT = "pip install -e '.[package]'"


def pinned_pyinstaller() -> str:
    """The version in pyproject.toml's `package` extra (`pyinstaller==X`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["package"]:
        found = re.fullmatch(r"\s*pyinstaller\s*==\s*([\w.]+)\s*", requirement, re.IGNORECASE)
        if found:
            return found.group(1)
    raise SystemExit("pyproject.toml: the `package` extra pins no pyinstaller==VERSION")


def check_pyinstaller() -> str:
    """The installed PyInstaller version, if it is the pinned one; else exit with the fix."""
    wanted = pinned_pyinstaller()
    try:
        installed = importlib.metadata.version("pyinstaller")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"PyInstaller is not installed; run: {INSTALL_HINT}") from None
    if installed != wanted:
        raise SystemExit(
            f"PyInstaller {installed} is installed but {wanted} is pinned (one-file re-exec "
            f"behaviour changes between 6.x releases); run: {INSTALL_HINT}"
        )
    return installed


def copy_models(target: Path) -> None:
    """A fresh copy of the demo repository, without Python caches."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "models", target, ignore=shutil.ignore_patterns("__pycache__"))


def build(onedir: bool, dist: Path) -> Path:
    """Run PyInstaller on the spec; returns the binary."""
    variant = "onedir" if onedir else "onefile"
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(ROOT / "build" / "pyinstaller" / variant),
        str(SPEC),
    ]
    if onedir:
        command += ["--", "--onedir"]
    subprocess.run(command, cwd=ROOT, check=True)
    if onedir:
        binary = dist / "inferencehub-dir" / "inferencehub"
        copy_models(binary.parent / "models")
    else:
        binary = dist / "inferencehub"
        copy_models(dist / "models")
    return binary


def size_mb(path: Path) -> float:
    """A file's size, or a folder's without the models/ copied into it (links count once)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    files = [f for f in files if not f.is_symlink()]
    if path.is_dir():
        files = [f for f in files if f.relative_to(path).parts[0] != "models"]
    return sum(f.stat().st_size for f in files) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onedir", action="store_true", help="one folder instead of one file")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output directory")
    args = parser.parse_args(argv)
    version = check_pyinstaller()
    started = time.monotonic()
    print(f"building with PyInstaller {version} ({'onedir' if args.onedir else 'onefile'})...")
    try:
        binary = build(args.onedir, args.dist.resolve())
    except subprocess.CalledProcessError as exc:
        print(f"PyInstaller failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    bundle = binary.parent if args.onedir else binary
    print(
        f"built {binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary} "
        f"in {time.monotonic() - started:.0f} s: {size_mb(bundle):.1f} MB"
        f"{' (the folder without models/)' if args.onedir else ''}; demo models copied beside it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
