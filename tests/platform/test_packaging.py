"""What the installed wheel holds: the four shipped packages with the data they read at run time, and none
of the development tools; without those, `tokentra demo` and `bench` say where to get them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tokentra_core.settings import REPO_ROOT


def test_the_wheel_ships_the_platform_and_not_the_development_tools(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("tokentra_platform-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"tokentra_core", "tokentra_functions", "tokentra_worker", "tokentra_cli"}
    assert "tokentra_core/llm/strategy.toml" in names  # read at run time by the LLM layer
    assert not any("tokentra_dev" in n or "/tests/" in n for n in names)


def test_without_the_development_tools_demo_and_bench_say_where_to_get_them():
    # tokentra_dev made unimportable, as in an environment that has only the wheel.
    code = ("import sys; sys.modules['tokentra_dev'] = None; from tokentra_cli.cli import app; "
            "app(sys.argv[1:])")
    for args in (["demo"], ["bench", "sdk"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert "development tools" in out.stderr and "./scripts/setup" in out.stderr
        assert "Traceback" not in out.stderr
