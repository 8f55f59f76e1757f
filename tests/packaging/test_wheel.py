"""A wheel built from the repo carries templates/ and targets/ and compiles a model."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from tests.conftest import EXAMPLE, ROOT, require_tool


def test_wheel_installs_and_compiles(tmp_path: Path) -> None:
    require_tool("cc")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(dist), str(ROOT)], check=True, capture_output=True)
    wheel = next(dist.glob("rnnq-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "rnnq/_data/templates/c/model.c.j2" in names
    assert "rnnq/_data/templates/c/runtime/rnnq_kernels.c" in names
    assert "rnnq/_data/targets/generic-c99.toml" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Dependencies come from this interpreter's site-packages (no network); rnnq from the wheel.
    fresh_site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    Path(fresh_site, "rnnq_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    where = subprocess.run([str(py), "-c", "import rnnq.resources as r; print(r.templates_dir())"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert str(env_dir) in where, where
    out = tmp_path / "build"
    r = subprocess.run([str(env_dir / "bin" / "rnnq"), "compile", str(EXAMPLE / "model.onnx"),
                        "--calib", str(EXAMPLE / "calib.npz"), "-o", str(out), "-q"],
                       check=False, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "model.c").is_file() and (out / "rnnq_kernels.c").is_file()
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
