"""rnnq command line: thin; parses, calls rnnq.api, prints.

Bad input -> one line on stderr naming the file/node and the problem, exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from rnnq import progress
from rnnq.backends.c.packages import PACKAGES
from rnnq.boards import available_boards
from rnnq.ir import RnnqError
from rnnq.passes.observer import CHOICES
from rnnq.targets import available
from rnnq.version import __version__

#: Control characters (C0, DEL, C1) and the bidi controls: a name from a file must not move
#: the cursor, recolour the terminal or start a forged line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """text with control characters shown as escapes (\\n, \\x1b, \\u202e): one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _fail(msg: str, code: int = 2) -> None:
    click.echo(f"rnnq: error: {printable(msg)}", err=True)
    sys.exit(code)


def _guard(fn):
    """Turn user errors into one line + exit 2; internal errors into one line + exit 3."""

    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # numpy's notes are not the user's business
                return fn(*a, **k)
        except RnnqError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as e:  # noqa: BLE001 - never show a traceback to users
            _fail(f"internal error ({type(e).__name__}: {e}); please report it", 3)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnq")
def main() -> None:
    """Compile float ONNX recurrent networks to integer-only C (or .tflite).

    \b
    Examples:
      rnnq compile model.onnx --calib calib.npz --target cortex-m4 -o build/
      rnnq validate build/ --data test.npz                 C vs simulator vs float
      rnnq validate build/ --data test.npz --on emulator   on the emulated board too
      rnnq firmware build/ --board nucleo-f401re -o fw/    UART test firmware for a board
      rnnq validate build/ --data test.npz --on serial:/dev/ttyACM0   on that board
      rnnq inspect model.onnx --target cortex-m4           cost before you have data
      rnnq targets                                         targets, kernels, budgets
    """


@main.command("compile")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calib", required=True, type=click.Path(dir_okay=False),
              help="Calibration data (.npz with x [N, T, F]).")
@click.option("--target", default="generic-c99", show_default=True,
              help=f"Target: {', '.join(available())} (`rnnq targets` shows their kernels "
                   "and budgets).")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Build folder to write (replaced as a whole on success).")
@click.option("--prefix", default="model", show_default=True,
              help="C symbol prefix of the generated API.")
@click.option("--calib-method", type=click.Choice(CHOICES), default="auto",
              show_default=True,
              help="How a calibrated range is read from what the float model showed: the "
                   "extremes (minmax), the 99.99th percentiles (percentile), the range "
                   "whose int8 grid has the least squared error (mse), or entropy "
                   "calibration as TensorRT does it (kl); per tensor, for both formats. "
                   "auto (C builds): per tensor, the method whose range gives the best "
                   "measured output SQNR on calibration data, minmax unless another gains "
                   "more than 1.5 dB; for --format tflite auto is minmax.")
@click.option("--seq-len", type=click.IntRange(min=1), default=None,
              help="Deployment sequence length: state ranges are calibrated to stay valid for "
                   "this many steps (calibration sequences are played back to back).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Whole-sequence (bidirectional) models: the longest sequence the C accepts "
                   "(default: --seq-len, the model's fixed T, or the calibration T).")
@click.option("--headroom", type=click.FloatRange(min=1.0), default=1.25, show_default=True,
              help="Widen calibrated ranges by this factor (about zero; recurrent outputs stay "
                   "within their natural bounds) so that inputs a little beyond the calibration "
                   "data do not clip. 1 = exact calibrated ranges.")
@click.option("--input-bits", type=click.Choice(["auto", "8", "16"]), default="auto",
              show_default=True,
              help="C: width of the model input. auto = 16 when the input feeds only recurrent "
                   "layers (their accumulators permitting), else 8. A 16-bit input costs twice "
                   "the input buffer and nothing else, and removes the input's quantisation "
                   "noise, which chaotic or bistable models amplify. --format tflite: auto = "
                   "16 when only 16-bit layers read the input (not with --float-io).")
@click.option("--output-bits", type=click.Choice(["auto", "8", "16"]), default="auto",
              show_default=True,
              help="Width of the model outputs. auto = 16 where the output is already "
                   "computed in 16 bits (a 16-bit recurrent state reaching it through views, "
                   "slices, concatenation, or a dense head run 16x8), else 8; 16 = the same, "
                   "and says which outputs stay 8-bit; 8 = every output int8. --format "
                   "tflite: the same, for the layers --precision makes 16-bit (not with "
                   "--float-io).")
@click.option("--precision", default="auto", show_default=True, metavar="SPEC",
              help="C: width of each recurrent layer's hidden state and recurrent weights. "
                   "auto: GRU int16 (a GRU whose update gate is near 1 moves its state by less "
                   "than an int8 step per call), LSTM/RNN int8, 8-bit weights, then, while the "
                   "output or any calibration sequence misses --min-sqnr, the one of a "
                   "layer's int16 state, 16-bit recurrent weights (r16) or both that measures "
                   "best; int8 / int16 (each may end in +r16): every "
                   "layer; LAYER=int16,LAYER=int8+r16,LAYER=r16,...: those layers "
                   "(by node name), the others auto. manifest.json 'choices' and `rnnq "
                   "inspect` say what was chosen and what each alternative measured. "
                   "--format tflite: auto and int16 keep every unrolled GRU/RNN/LSTM layer in "
                   "int16 (LiteRT's 16x8 builtins), int8 none; +r16 (or auto, the goal "
                   "missed) adds each recurrent weight's residual as a second "
                   "FULLY_CONNECTED.")
@click.option("--min-sqnr", type=click.FloatRange(0, 200), default=35.0, show_default=True,
              metavar="DB", help="--precision auto: the output SQNR against the float model "
                                 "(calibration data) to reach (tflite: below it, LSTMs leave "
                                 "LiteRT's fused op for 16-bit unrolled steps).")
@click.option("--max-drop", type=click.FloatRange(0, 100), default=None, metavar="PP",
              help="C, --precision auto: instead of --min-sqnr, a classifier's decisions "
                   "(argmax, or a single probability > 0.5) may differ from the float model's "
                   "on at most PP % of the calibration data (a bound on the accuracy points "
                   "lost).")
@click.option("--state-bits", type=click.Choice(["auto", "8", "16"]), default="auto",
              hidden=True, help="The older spelling of --precision int8 / int16.")
@click.option("--flash", type=click.IntRange(min=0), default=None,
              help="Flash budget in bytes (default: the target's typical part; 0 = no limit).")
@click.option("--ram", type=click.IntRange(min=0), default=None,
              help="RAM budget in bytes (default: the target's typical part; 0 = no limit).")
@click.option("--weights", type=click.Choice(["auto", "int8", "int16"]), default="auto",
              show_default=True,
              help="C: matvec weights in flash. int16: pre-widened offline for the target's "
                   "faster int16-weight kernels (Cortex-M4/M7/M33: no SXTB16 widening "
                   "in the matvec) at twice the weight flash; int8; auto: int16 where the "
                   "target has such kernels and the build's constants then take at most half "
                   "the flash budget (--flash). Same results either way.")
@click.option("--format", "fmt", type=click.Choice(["c", "tflite"]), default="c",
              show_default=True,
              help="c: integer-only C for the target; tflite: an integer-only model.tflite for "
                   "LiteRT (phones), T fixed to --seq-len or the calibration length.")
@click.option("--float-io", is_flag=True,
              help="tflite: take and return float32 (QUANTIZE/DEQUANTIZE at the edges only).")
@click.option("--tflite-loop", type=click.Choice(["unrolled", "while"]), default="unrolled",
              show_default=True,
              help="tflite: GRU / vanilla RNN as ops repeated for every step (fastest; the file "
                   "grows with T) or as one WHILE loop (file size independent of T; slower, "
                   "and TFLite Micro may lack the ops). Same integers either way.")
@click.option("--package", "packages", multiple=True, type=click.Choice(PACKAGES),
              help="C: also lay the build folder out as this ecosystem expects (repeatable): "
                   "cmake (install rules, find_package), arduino (a library with an example "
                   "sketch), zephyr (a module), platformio (a library).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_guard
def compile_cmd(model, calib, target, out, prefix, calib_method, seq_len, max_steps, headroom,
                input_bits, output_bits, precision, min_sqnr, max_drop, state_bits, flash, ram, weights, fmt,
                float_io, tflite_loop, packages, quiet):
    """Compile MODEL.onnx into an integer-only C build folder (or a .tflite).

    \b
    Examples:
      rnnq compile kws.onnx --calib calib.npz --target cortex-m4 -o build/
      rnnq compile vad.onnx --calib stream.npz --target cortex-m0plus --prefix vad -o vad/
      rnnq compile lstm.onnx --calib calib.npz --seq-len 2000 -o build/   long streams
      rnnq compile lstm.onnx --calib calib.npz --format tflite -o phone/
      rnnq compile lstm.onnx --calib calib.npz --precision lstm_2=int16 -o build/
    """
    from rnnq import api

    _check_format_options(fmt)
    log = (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
    tty = sys.stderr.isatty()

    def calib_progress(done: int, total: int) -> None:
        if tty:
            click.echo(f"\r  calibrating: {done}/{total} sequences", err=True, nl=done == total)

    m = api.compile_model(model, calib, out, target, prefix, calib_method,
                          None if quiet else calib_progress, log, seq_len=seq_len, max_steps=max_steps,
                          headroom=headroom, flash=flash, ram=ram, fmt=fmt, float_io=float_io,
                          tflite_loop=tflite_loop, input_bits=input_bits,
                          output_bits=output_bits,
                          state_bits=state_bits, precision=precision, min_sqnr=min_sqnr,
                          max_drop=max_drop, weights=weights, packages=packages)
    if quiet:
        return
    if fmt == "tflite":
        t = m["tflite"]
        click.echo(f"wrote {out}/{t['file']}: {t['bytes']} B, {sum(t['ops'].values())} ops, "
                   f"T = {t['seq_len']}, {t['input']['dtype']} in, "
                   f"{'/'.join(dict.fromkeys(o['dtype'] for o in t['outputs']))} out")
        return
    mem = m["memory"]
    click.echo(f"wrote {out}/ for {m['target']}: weights {mem['weight_bytes']} B, "
               f"arena {mem['arena_bytes']} B, state {mem['state_bytes']} B, "
               f"{m['macs_per_step']} MACs/step")
    tm = m["target_memory"]
    if tm.get("measured"):
        click.echo(f"on {m['target']}: flash {tm['flash_bytes']} B, RAM {tm['ram_bytes']} B "
                   f"(stack {tm['stack_bytes']} B) of {tm['part']}")


#: Options that mean something for one output format only.
_ONLY = {"c": ("target", "prefix", "max_steps", "state_bits",
              "max_drop", "flash", "ram", "weights", "packages"),
         "tflite": ("float_io", "tflite_loop")}


def _check_format_options(fmt: str) -> None:
    """An option of the other format is an error, not silently ignored."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    for other, names in _ONLY.items():
        if other == fmt:
            continue
        given = [n for n in names if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
        if given:
            opts = {p.name: p.opts[0] for p in ctx.command.params}
            flags = ", ".join(opts[n] for n in given)
            raise RnnqError(f"{flags} only applies to --format {other} (this is --format {fmt})")


def _check_on(ctx, param, value: str) -> str:
    if value in ("host", "emulator") or value.startswith("serial:"):
        return value
    raise click.BadParameter(f"{value!r}: host, emulator or serial:PORT[,BAUD]")


@main.command("validate")
@click.argument("build", type=click.Path(file_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Test data (.npz: x, optional lengths and y).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("--on", "on", default="host", show_default=True, callback=_check_on,
              help="host | emulator | serial:PORT[,BAUD]: also run the target's test firmware "
                   "on its emulated board (QEMU), or the UART test firmware (rnnq firmware) "
                   "on a board at a serial port (default 115200 baud).")
@click.option("--per-layer", is_flag=True,
              help="Also show, for every quantised tensor, its SQNR against the float model "
                   "and what its quantisation alone costs at the output: where error enters.")
@click.option("--report", "html_path", type=click.Path(dir_okay=False),
              help="Also write one self-contained HTML page: the accuracy table, the per-layer "
                   "SQNR chart (implies --per-layer), error against the timestep and, for "
                   "classifiers, the confusion matrices.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress output (also with --json): only the report.")
@_guard
def validate_cmd(build, data, json_path, on, per_layer, html_path, quiet):
    """Compare float, integer simulator and compiled C on DATA. Exit 1 if C != simulator."""
    from rnnq import api
    from rnnq.html_report import render_html
    from rnnq.report import format_per_layer, format_report, jsonable

    for out in (json_path, html_path):
        if out and not Path(out).resolve().parent.is_dir():
            raise RnnqError(f"{out}: its folder does not exist")
    per_layer = per_layer or bool(html_path)
    with progress.use(None if quiet or json_path else progress.Reporter()):
        rep = api.validate(build, data, on=on, per_layer=per_layer)
    click.echo(format_report(rep))
    if per_layer:
        click.echo(format_per_layer(rep["per_layer"]))
    if json_path:
        _write_atomic(Path(json_path), json.dumps(jsonable(rep), indent=1) + "\n")
    if html_path:
        _write_atomic(Path(html_path), render_html(rep, f"rnnq validate {build}"))
    exact = all(rep[k]["bit_exact"] for k in ("c", "device", "tflite") if k in rep)
    sys.exit(0 if exact else 1)


def _write_atomic(path: Path, text: str) -> None:
    """Write a report whole or not at all (a temporary file beside it, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@main.command("firmware")
@click.argument("build", type=click.Path(file_okay=False))
@click.option("--board", required=True,
              help="A board file in targets/boards: " + ", ".join(available_boards()) + ".")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write the firmware's sources, Makefile, firmware.elf and "
                   "firmware.bin into.")
@_guard
def firmware_cmd(build, board, out):
    """Build the UART test firmware of BUILD for a board: flash it, then
    `rnnq validate BUILD --data TEST.npz --on serial:PORT`."""
    from rnnq import api

    elf = api.uart_firmware(build, board, out)
    click.echo(f"{elf} and {elf.with_suffix('.bin')}: flash one, then rnnq validate {build} "
               "--data TEST.npz --on serial:PORT[,BAUD]")


@main.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--target", default=None,
              help="With a model: what compiling it for this target costs (per-layer MACs and "
                   "constant bytes, arena/state RAM, flash and RAM measured with the target's "
                   "toolchain), without calibration data.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="With --target, whole-sequence (bidirectional) models: size the buffers "
                   "for this many steps.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="With --target: write the analysis here.")
@_guard
def inspect_cmd(path, target, max_steps, json_path):
    """Show the IR, shapes, parameters, MACs per step and memory of a model or build folder.

    \b
    Examples:
      rnnq inspect model.onnx                     the IR and its size
      rnnq inspect model.onnx --target cortex-m4  what a compile would cost on the M4
      rnnq inspect build/                         what a build holds
    """
    from rnnq import api

    if target is None:
        if max_steps or json_path:
            raise RnnqError("--max-steps and --json apply with --target")
        click.echo(api.inspect(path))
        return
    if Path(path).is_dir():
        raise RnnqError(f"{path}: --target analyses a model file; a build folder already "
                        "says what it costs (rnnq inspect BUILD)")
    a = api.analyze(path, target, max_steps=max_steps)
    click.echo(api.format_analysis(a))
    if json_path:
        _write_atomic(Path(json_path), json.dumps(a, indent=1) + "\n")


@main.command("targets")
@_guard
def targets_cmd():
    """List the targets: kernels, budget, and whether their toolchain is installed here."""
    import shutil

    from rnnq.targets import available, load_target

    rows = [("target", "matvec", "toolchain", "budget (flash / RAM)", "description")]
    for name in available():
        t = load_target(name)
        cc = t["toolchain"]["cc"]
        b = t["budget"]
        budget = (f"{b['flash_bytes'] // 1024} KiB / {b['ram_bytes'] // 1024} KiB"
                  if b.get("flash_bytes") else "none")
        wide = t["kernels"].get("matvec_wide")
        rows.append((name, t["kernels"]["matvec"] + (f" / {wide}" if wide else ""),
                     f"{cc} ({'found' if shutil.which(cc) else 'missing'})", budget,
                     t.data.get("description", "")))
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w[k]) for k, c in enumerate(r[:4])) + "  " + r[4])


def run() -> None:
    """The console script: click's usage errors (a bad option value, a missing argument) as
    one line and exit 2, like every other refusal."""
    try:
        code = main(standalone_mode=False)
    except click.exceptions.UsageError as e:
        where = f"rnnq {e.ctx.info_name}: " if e.ctx is not None and e.ctx.parent else ""
        _fail(where + e.format_message())
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
