"""A non-editable install (the container image does `pip install .`) carries the files the server reads
at run time besides Python modules: the page templates and the SQL migrations.

The wheel is built with the backend pyproject.toml declares. When the environment's own setuptools is
too old for this pyproject (PEP 639 licence fields need setuptools 77), pip fetches one from the
package index into an isolated build environment; without the index the test is skipped.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ("No matching distribution", "Could not fetch", "NewConnectionError", "Network is unreachable",
           "Temporary failure in name resolution")


def _local_setuptools_is_enough() -> bool:
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return major >= 77


def test_wheel_carries_templates_and_migrations_and_renders_from_them(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in ("server", "federation", "clients"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    isolation = ["--no-build-isolation", "--no-index"] if _local_setuptools_is_enough() else []
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and any(sign in built.stderr for sign in OFFLINE):
        pytest.skip(f"the build backend could not be fetched from the package index: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("crosstalk-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.name for p in (ROOT / "server/http/templates").glob("*.html"))
    assert templates and all(f"server/http/templates/{t}" in names for t in templates)
    schema = ROOT / "server/storage/schema"
    migrations = sorted(p.relative_to(schema).as_posix() for p in schema.rglob("*.sql"))
    assert migrations and all(f"server/storage/schema/{m}" in names for m in migrations)

    # Installed from the wheel alone (not this checkout), the templates load and render.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]);"
             "from server.http import web; assert web.__file__.startswith(sys.argv[1]), web.__file__;"
             "print(web._templates().get_template('message.html').render(title='<T>', message='m', lang='en',"
             " site_name='S', base_url='http://x'))")
    shown = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "<title>&lt;T&gt; — S</title>" in shown.stdout
