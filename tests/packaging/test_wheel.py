"""A wheel built from the repo carries templates/ and targets/; installed in a fresh venv, its
`rnnq` compiles for every target whose toolchain is present and validates."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from rnnq.targets import available, load_target
from rnnq.version import __version__
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
    rnnq = str(env_dir / "bin" / "rnnq")
    version = subprocess.run([rnnq, "--version"], check=True, capture_output=True, text=True)
    assert __version__ in version.stdout
    # every target whose toolchain is here: compile (the toolchain measures the build), and
    # validate (the host run) the portable and one cross build
    present = [t for t in available() if shutil.which(load_target(t)["toolchain"]["cc"])]
    assert "generic-c99" in present
    for target in present:
        out = tmp_path / target
        r = subprocess.run([rnnq, "compile", str(EXAMPLE / "model.onnx"), "--calib",
                            str(EXAMPLE / "calib.npz"), "--target", target, "-o", str(out), "-q"],
                           check=False, capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, (target, r.stderr)
        assert (out / "model.c").is_file() and (out / "rnnq_kernels.c").is_file()
        assert f"rnnq {__version__}" in (out / "model.c").read_text().splitlines()[0]
        if target in ("generic-c99", "cortex-m4"):
            r = subprocess.run([rnnq, "validate", str(out), "--data", str(EXAMPLE / "test.npz")],
                               check=False, capture_output=True, text=True, cwd=tmp_path)
            assert r.returncode == 0 and "bit-exact" in r.stdout, (target, r.stdout + r.stderr)
    subprocess.run(["make", "-s", "-C", str(tmp_path / "generic-c99")], check=True,
                   capture_output=True)
