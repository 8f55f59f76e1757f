"""`rnnq compile --package ...`: each ecosystem's layout, checked with the tool where it works
offline (CMake: install, then find_package from a separate project, built and run), otherwise
against the documented manifest formats and by compiling the package's sources with the flags
that ecosystem's build uses (Arduino: arm-none-eabi-g++ for the sketch with a stub Arduino.h;
Zephyr and PlatformIO: arm-none-eabi-gcc). arduino-cli, PlatformIO and west need platform
downloads, which the tests cannot make."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnq.api import compile_model, open_graphs
from rnnq.sim.integer import quantize_input, run_integer
from tests.conftest import EXAMPLE, require_tool

PACKAGES = ("cmake", "arduino", "zephyr", "platformio")
#: Flags of a Cortex-M4 Arduino core build (mbed/STM32 cores) and of Zephyr's, for compiling
#: the package sources as those builds would.
ARDUINO_CXX = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=gnu++17", "-fno-exceptions",
               "-fno-rtti", "-ffunction-sections", "-fdata-sections", "-Wall", "-Werror"]
EMBEDDED_C = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=gnu11", "-ffreestanding",
              "-ffunction-sections", "-fdata-sections", "-Wall", "-Werror"]
STUB_ARDUINO_H = """#pragma once
struct StubSerial {
    void begin(long) {}
    explicit operator bool() const { return true; }
    void print(int) {}
    void print(char) {}
    void print(const char *) {}
    void println() {}
    void println(const char *) {}
};
extern StubSerial Serial;
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "build"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "cortex-m4", "jv",
                  packages=PACKAGES)
    return out


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], check=False, capture_output=True, text=True,
                       timeout=300, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_manifest_records_the_packages(build: Path) -> None:
    m = json.loads((build / "manifest.json").read_text())
    assert m["packages"] == list(PACKAGES)
    for f in ("library.json", "zephyr/module.yml", "arduino/rnnq_jv/library.properties"):
        assert f in m["files"]


def test_cmake_package_installs_and_is_found(build: Path, tmp_path: Path) -> None:
    """The host compiler builds and installs the library; a separate project finds it with
    find_package, links rnnq::rnnq_jv and runs a step."""
    require_tool("cmake")
    require_tool("cc")
    prefix = tmp_path / "prefix"
    _run(["cmake", "-S", build, "-B", tmp_path / "lib", f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    _run(["cmake", "--build", tmp_path / "lib"])
    _run(["cmake", "--install", tmp_path / "lib"])
    assert list(prefix.rglob("librnnq_jv.a")) and list(prefix.rglob("rnnq_jvConfig.cmake"))
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\nfind_package(rnnq_jv REQUIRED)\n"
        "add_executable(app main.c)\ntarget_link_libraries(app rnnq::rnnq_jv)\n")
    (app / "main.c").write_text(
        '#include <stdio.h>\n#include "model.h"\n'
        "static int32_t arena[(JV_ARENA_BYTES + 3) / 4];\n"
        "int main(void) {\n  jv_state st; jv_input_t x[JV_INPUT_SIZE] = {0};\n"
        "  int8_t y[JV_OUTPUT_SIZE];\n  jv_reset(&st);\n"
        "  if (jv_step(&st, x, y, arena) != JV_OK) return 1;\n"
        "  for (int k = 0; k < JV_OUTPUT_SIZE; k++) printf(\"%d \", y[k]);\n  return 0;\n}\n")
    _run(["cmake", "-S", app, "-B", app / "out", f"-DCMAKE_PREFIX_PATH={prefix}"])
    _run(["cmake", "--build", app / "out"])
    got = _run([app / "out" / "app"]).stdout.split()
    # the same step in the integer simulator
    _, _, ig = open_graphs(build)
    t = ig.tensors[ig.inputs[0]]
    env = run_integer(ig, np.zeros((1, 1, *t.shape), np.int16 if t.dtype == "int16" else np.int8))
    want = np.concatenate([env[o].reshape(-1) for o in ig.outputs])
    assert np.array_equal(np.array(got, dtype=np.int64), want.astype(np.int64))


def _properties(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)


def test_arduino_library_layout_and_sketch_build(build: Path, tmp_path: Path) -> None:
    """library.properties has every field the Arduino library specification (1.5 format)
    requires; src/ holds the sources; the example sketch compiles as the IDE compiles it (C++,
    its folder name = its file name)."""
    require_tool("arm-none-eabi-g++")
    require_tool("arm-none-eabi-gcc")
    lib = build / "arduino" / "rnnq_jv"
    props = _properties(lib / "library.properties")
    for key in ("name", "version", "author", "maintainer", "sentence", "paragraph", "category",
                "url", "architectures"):
        assert props.get(key), key
    assert props["name"] == lib.name and re.fullmatch(r"[A-Za-z0-9_.-]+", props["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", props["version"])
    assert props["category"] in ("Display", "Communication", "Signal Input/Output", "Sensors",
                                 "Device Control", "Timing", "Data Storage", "Data Processing",
                                 "Other")
    assert (lib / "src" / props["includes"]).is_file()
    sketch = lib / "examples" / "stream" / "stream.ino"
    assert sketch.is_file()
    assert "float" not in sketch.read_text() and "double" not in sketch.read_text()
    (tmp_path / "Arduino.h").write_text(STUB_ARDUINO_H)
    for c in sorted((lib / "src").glob("*.c")):
        _run(["arm-none-eabi-gcc", *EMBEDDED_C, "-c", c, "-o", tmp_path / (c.stem + ".o")])
    _run(["arm-none-eabi-g++", *ARDUINO_CXX, "-include", tmp_path / "Arduino.h", "-I",
          lib / "src", "-x", "c++", "-c", sketch, "-o", tmp_path / "sketch.o"])


def test_arduino_sketch_streams_the_first_calibration_sequence(build: Path) -> None:
    """The codes in the sketch are the quantised first calibration sequence."""
    _, _, ig = open_graphs(build)
    text = (build / "arduino" / "rnnq_jv" / "examples" / "stream" / "stream.ino").read_text()
    rows = re.findall(r"^    \{ ([-0-9, ]+) \},$", text, re.MULTILINE)
    got = np.array([[int(v) for v in r.split(",")] for r in rows])
    cal = np.load(EXAMPLE / "calib.npz")
    n = int(cal["lengths"][0]) if "lengths" in cal.files else cal["x"].shape[1]
    want = quantize_input(ig, cal["x"][:1, :n]).reshape(n, -1)[: len(got)]
    assert len(got) == min(n, 32) and np.array_equal(got, want)


def test_zephyr_module_layout_and_sources(build: Path, tmp_path: Path) -> None:
    import yaml

    require_tool("arm-none-eabi-gcc")
    mod = yaml.safe_load((build / "zephyr" / "module.yml").read_text())
    assert mod["name"] == "rnnq_jv"
    assert (build / mod["build"]["cmake"] / "CMakeLists.txt").is_file()
    assert (build / mod["build"]["kconfig"]).is_file()
    kconfig = (build / "zephyr" / "Kconfig").read_text()
    assert re.search(r"^config RNNQ_JV\n\tbool ", kconfig, re.MULTILINE)
    cm = (build / "zephyr" / "CMakeLists.txt").read_text()
    assert "if(CONFIG_RNNQ_JV)" in cm
    srcs = re.findall(r"\$\{CMAKE_CURRENT_LIST_DIR\}/\.\./(\S+?)[ )]", cm)
    assert srcs and "harness.c" not in srcs
    for s in srcs:
        _run(["arm-none-eabi-gcc", *EMBEDDED_C, "-I", build, "-c", build / s, "-o",
              tmp_path / (Path(s).stem + ".o")])


def test_platformio_library_json(build: Path, tmp_path: Path) -> None:
    """library.json per PlatformIO's manifest format: its source filter picks exactly the
    library's sources (never the test harness with its main), which compile."""
    require_tool("arm-none-eabi-gcc")
    m = json.loads((build / "library.json").read_text())
    for key in ("name", "version", "description", "keywords", "frameworks", "platforms",
                "build"):
        assert key in m, key
    flt = m["build"]["srcFilter"]
    assert flt[0] == "-<*>" and all(re.fullmatch(r"\+<[\w.]+>", f) for f in flt[1:])
    picked = [f[2:-1] for f in flt[1:]]
    assert "harness.c" not in picked and "model.c" in picked
    for s in picked:
        _run(["arm-none-eabi-gcc", *EMBEDDED_C, "-I", build / m["build"]["includeDir"], "-c",
              build / s, "-o", tmp_path / (Path(s).stem + ".o")])


def test_package_is_a_c_option(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "rnnq.cli", "compile", str(EXAMPLE / "model.onnx"),
                        "--calib", str(EXAMPLE / "calib.npz"), "--format", "tflite",
                        "--package", "arduino", "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "--package only applies to --format c" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()


#: Files that cannot carry a comment: data, and manifests whose formats have no comment syntax
#: (library.json says "license": "MIT-0" instead).
NO_COMMENT = {"manifest.json", "calibration.json", "model.onnx", "library.json", "library.properties"}


def test_every_generated_file_says_mit0(build: Path) -> None:
    """README "Licence": everything rnnq writes into a build folder (sources, runtime copies,
    build files, package layouts, the UART test firmware) carries the MIT-0 SPDX line in its
    first lines."""
    from rnnq.backends.c.uart_firmware import firmware_files
    from rnnq.boards import load_board

    m = json.loads((build / "manifest.json").read_text())
    files = {str(p.relative_to(build)): p.read_bytes() for p in build.rglob("*") if p.is_file()}
    fw = firmware_files(build, m, load_board("qemu-mps2-an386"))
    files.update({f"firmware/{k}": v for k, v in fw.items()})
    assert len(files) > 20 and any(k.startswith("firmware/bsp") for k in files)
    missing = [name for name, data in sorted(files.items())
               if Path(name).name not in NO_COMMENT
               and b"SPDX-License-Identifier: MIT-0" not in b"\n".join(data.splitlines()[:3])]
    assert not missing, missing
    assert json.loads(files["library.json"])["license"] == "MIT-0"
