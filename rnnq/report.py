"""How close an integer build is to its float model, and the text `rnnq validate` prints.

Plain functions of arrays (numpy only): accuracy or RMSE against labels, SQNR, error by
timestep; and the report's formatting (text, JSON). What is compared with what is decided by
the caller (rnnq.validation).
"""

from __future__ import annotations

import math

import numpy as np


def metrics(pred: np.ndarray, y: np.ndarray | None) -> dict:
    """Accuracy and confusion matrix (integer labels: argmax of pred; rows the label, columns
    the prediction) or RMSE (float targets) of predictions [N, ...]."""
    out: dict = {"accuracy": None, "rmse": None}
    if y is None:
        return out
    if np.issubdtype(y.dtype, np.integer):
        guess = pred.reshape(len(y), -1).argmax(axis=1)
        out["accuracy"] = float(np.mean(guess == y.ravel()))
        k = max(pred.reshape(len(y), -1).shape[1], int(y.max()) + 1)
        conf = np.zeros((k, k), np.int64)  # rows: the label, columns: the predicted class
        np.add.at(conf, (y.ravel().astype(np.int64), guess), 1)
        out["confusion"] = conf.tolist()
    else:
        diff = pred.reshape(len(y), -1) - y.reshape(len(y), -1).astype(np.float64)
        out["rmse"] = float(np.sqrt(np.mean(diff**2)))
    return out


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio of `test` against `ref`, in dB (inf when equal)."""
    noise = float(np.sum((ref - test) ** 2))
    sig = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(sig / noise) if sig > 0 else -math.inf


def float_vs_int(f0: np.ndarray, i0: np.ndarray, y: np.ndarray | None, out_scale: float,
                 engine: str) -> dict:
    """The report's "float" and "int" entries for the first output: metrics of each against
    the labels, SQNR and max error of the integer model against the float one."""
    err = float(np.max(np.abs(f0 - i0)))
    return {"float": {**metrics(f0, y), "engine": engine},
            "int": {**metrics(i0, y), "sqnr_db": sqnr_db(f0, i0), "max_abs_error": err,
                    "max_error_lsb": err / out_scale}}


def error_by_step(fl: np.ndarray, iq: np.ndarray, lengths: np.ndarray) -> dict:
    """SQNR (dB; 999 when exact) and RMSE of iq against fl [N, T, K] at each timestep t, over
    the sequences that reach t."""
    sq, rm = [], []
    for t in range(int(lengths.max())):
        live = lengths > t
        f, i = fl[live, t], iq[live, t]
        s = sqnr_db(f, i)
        sq.append(round(s, 3) if np.isfinite(s) else 999.0)
        rm.append(float(np.sqrt(np.mean((f - i) ** 2))))
    return {"sqnr_db": sq, "rmse": rm}


def jsonable(v):
    """The report as JSON can hold it: JSON has no infinity, and a huge SQNR means exact."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return 1e9 if v > 0 else -1e9
    return v


def _name(s: str, width: int = 40) -> str:
    """A model's name as the terminal shows it: printable characters only, bounded length."""
    t = "".join(c if c.isprintable() else "?" for c in s)
    return t if len(t) <= width else t[: width - 3] + "..."


def _f(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if pct else f"{v:.6g}"


def _exactness_rows(rep: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, label in (("c", "bit-exact"), ("tflite", "LiteRT bit-exact")):
        if key in rep:
            e = rep[key]
            rows.append((label, "", "", (f"{'yes' if e['bit_exact'] else 'NO'} ({e['mismatches']}"
                                         f" of {e['compared_values']} differ)")))
    if "tflite" in rep:
        d = rep["tflite"]["default_delegates"]
        rows.append(("LiteRT + XNNPACK", "", "", (f"{d['mismatches']} differ from LiteRT builtin "
                     f"(max {d['max_diff_lsb']} LSB)")))
    tm = rep.get("tflite_micro")
    if tm is not None:
        rows.append(("TFLite Micro", "", "", (
            f"{tm['mismatches_vs_litert']} of {tm['compared_values']} differ from LiteRT "
            f"(max {tm['max_diff_lsb']} LSB)" if tm["ran"] else tm["reason"])))
    if "device" in rep:
        d = rep["device"]
        rows.append(("on the device", "", "", (f"{'yes' if d['bit_exact'] else 'NO'} "
                     f"({d['mismatches']} of {d['compared_values']} differ; {d['runner']})")))
        if d.get("cycles_per_step") is not None:  # measured on the board (serial_run.py)
            rows.append(("  cycles per step", "", "", f"{d['cycles_per_step']:g}"))
    return rows


def format_report(rep: dict) -> str:
    """The table `rnnq validate` prints."""
    rows = [
        ("", "float", "integer (simulator)",
         "LiteRT vs simulator" if "tflite" in rep else "C vs simulator"),
        ("accuracy", _f(rep["float"]["accuracy"], True), _f(rep["int"]["accuracy"], True), ""),
        ("rmse", _f(rep["float"]["rmse"]), _f(rep["int"]["rmse"]), ""),
        ("SQNR vs float", "", f"{rep['int']['sqnr_db']:.2f} dB", ""),
        ("max |error|", "", (f"{_f(rep['int']['max_abs_error'])} "
                             f"({rep['int']['max_error_lsb']:.1f} LSB)"), ""),
        *[(f"  SQNR {_name(o['name'])}", "", f"{o['sqnr_db']:.2f} dB", "")
          for o in rep.get("outputs", []) if len(rep["outputs"]) > 1],
        *_exactness_rows(rep),
    ]
    clipped = rep["int"].get("input_clipped")
    if clipped:
        rows.append(("inputs clipped", "", percent(clipped), ""))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [(f"rnnq validate: {rep['n']} sequences, target {rep['target']}, "
              f"float by {rep['float']['engine']}")]
    for r in rows:
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    if clipped and clipped > 0.01:
        lines.append("note: some test inputs lie beyond the calibrated input range and saturate; "
                     "compile with more --headroom or more representative calibration data")
    sat = rep.get("saturation", {}).get("tensors", [])
    if sat:
        lines.append("saturating tensors (float values beyond the integer range):")
        for r in sat[:5]:
            feat = f"feature {r['feature']}: " if "feature" in r else ""
            count = f"{r['values']} of {r['of']} values, " if "values" in r else ""
            lines.append(f"  {_name(r['tensor'])}  {percent(r['fraction'])} "
                         f"({count}above {percent(r['above'])}, below {percent(r['below'])}; "
                         f"{feat}float {r['float_range'][0]:.3g}..{r['float_range'][1]:.3g}, "
                         f"{r['dtype']} {r['int_range'][0]:.3g}..{r['int_range'][1]:.3g})")
        if len(sat) > 5:
            lines.append(f"  ... and {len(sat) - 5} more (--json: saturation)")
    if rep.get("c", {}).get("target_kernels") is False and "device" not in rep:
        lines.append(f"note: the host run built the C as portable code (generic-c99 kernels); "
                     f"`--on emulator` tests {rep['target']}'s own kernels on its emulated board")
    lines += [f"warning: {w}" for w in rep.get("warnings", [])]
    return "\n".join(lines)


def percent(fraction: float) -> str:
    """A share as a percentage that does not read 0.00 % when it is not zero."""
    v = 100 * fraction
    return f"{v:.2f} %" if v == 0 or v >= 0.01 else f"{v:.2g} %"


def summarise(rows: list[dict], threshold_db: float, weights: list[dict] | None = None,
              outputs: set[str] | None = None) -> dict:
    """The rows with the names a reader wants: where the signal is first lost (the first
    tensor below the threshold, when a graph output is below it too: a tensor whose own grid
    measures lower but whose error the next layers average out has not lost the signal; it is
    listed in `below_threshold`), and which grid costs the most on its own (a tensor's or,
    `weights`, a weight matrix's)."""
    weights = weights or []
    below = [r["tensor"] for r in rows if r["sqnr_db"] < threshold_db]
    outs = [r for r in rows if outputs is None or r["tensor"] in outputs]
    lost = below[0] if below and any(r["sqnr_db"] < threshold_db for r in outs) else None
    costly = min(rows + weights, key=lambda r: r["alone_sqnr_db"], default=None)
    return {"threshold_db": threshold_db, "tensors": rows, "weights": weights,
            "first_below_threshold": lost, "below_threshold": below,
            "costliest_alone": costly["tensor"] if costly else None}


def format_per_layer(rep: dict) -> str:
    """The per-layer table `rnnq validate --per-layer` prints."""
    def db(v: float) -> str:
        return "exact" if math.isinf(v) and v > 0 else f"{v:.1f}"

    head = ("tensor", "op", "dtype", "SQNR dB", "max err LSB", "alone dB")
    rows = [head]
    for r in rep["tensors"]:
        rows.append((r["tensor"], r["op"], r["dtype"], db(r["sqnr_db"]),
                     f"{r['max_error_lsb']:.1f}", db(r["alone_sqnr_db"])))
    weights = [(r["tensor"], r["op"], r["dtype"], db(r["sqnr_db"]),
                f"{r['max_error_lsb']:.1f}", db(r["alone_sqnr_db"]))
               for r in rep.get("weights", [])]
    wide = rows + weights
    w = [max(len(r[i]) for r in wide) for i in range(len(head))]

    def table(body: list[tuple]) -> list[str]:
        return ["  " + "  ".join(c.ljust(w[k]) if k < 3 else c.rjust(w[k])
                                 for k, c in enumerate(r)).rstrip() for r in body]

    lines = [("per layer (SQNR: accumulated error against the float model; alone: the first "
              "output with only this tensor quantised)")]
    lines += table(rows)
    if weights:
        lines.append("  weights (each matrix once; SQNR: its grid (int8, or 16-bit R) against the float "
                     "weights; alone: the first output with only this matrix quantised)")
        lines += table(weights)
    lost, below = rep["first_below_threshold"], rep.get("below_threshold", [])
    if lost:
        lines.append(f"signal first below {rep['threshold_db']:.0f} dB at: {lost}")
    elif below:
        lines.append(f"outputs at or above {rep['threshold_db']:.0f} dB (below it on their own "
                     f"grids, averaged out downstream: {', '.join(below[:3])}"
                     f"{', ...' if len(below) > 3 else ''})")
    else:
        lines.append(f"every tensor at or above {rep['threshold_db']:.0f} dB")
    if rep["costliest_alone"]:
        lines.append(f"costliest grid on its own: {rep['costliest_alone']}")
    return "\n".join(lines)
