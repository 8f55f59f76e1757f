"""LSTM classifiers exported by PyTorch (`torch.onnx.export(..., dynamo=False)`, opsets 14, 17,
20): float reference == onnxruntime, compiled C == simulator, and how often the integer model's
argmax agrees with the float model's on random inputs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx_cases import check_compiled, check_float, random_sequence, run_parallel, selected_params

from tests.conftest import require_tool

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CI") == "true":
        pytest.fail("torch is required in CI but not importable", pytrace=False)
    pytest.skip("torch not installed", allow_module_level=True)

FEAT, HIDDEN, CLASSES, T_EXPORT = 5, 12, 4, 9


class Classifier(torch.nn.Module):
    """LSTM -> last step (three spellings) -> head."""

    def __init__(self, batch_first: bool, pick: str, head: str, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.batch_first, self.pick = batch_first, pick
        self.lstm = torch.nn.LSTM(FEAT, HIDDEN, batch_first=batch_first)
        layers: dict[str, list[torch.nn.Module]] = {
            "linear": [torch.nn.Linear(HIDDEN, CLASSES)],
            "relu": [torch.nn.Linear(HIDDEN, CLASSES), torch.nn.ReLU()],
            "softmax": [torch.nn.Linear(HIDDEN, CLASSES), torch.nn.Softmax(dim=-1)],
            "mlp": [torch.nn.Linear(HIDDEN, 16), torch.nn.ReLU(), torch.nn.Linear(16, CLASSES)],
        }
        self.head = torch.nn.Sequential(*layers[head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, (h, _) = self.lstm(x)
        if self.pick == "y[:, -1]":
            z = y[:, -1] if self.batch_first else y[-1]
        elif self.pick == "h_n[-1]":
            z = h[-1]
        else:
            z = h.squeeze(0)
        return self.head(z)


# (opset, batch_first, last step, head, dynamic T)
VARIANTS = [
    (14, True, "y[:, -1]", "softmax", True),
    (14, False, "h_n[-1]", "mlp", False),
    (14, True, "h_n.squeeze(0)", "relu", True),
    (17, True, "y[:, -1]", "mlp", True),
    (17, False, "y[:, -1]", "linear", True),
    (17, True, "h_n[-1]", "relu", False),
    (17, False, "h_n.squeeze(0)", "softmax", False),
    (20, True, "h_n[-1]", "softmax", True),
    (20, False, "h_n.squeeze(0)", "mlp", True),
    (20, True, "y[:, -1]", "linear", False),
    (20, False, "y[:, -1]", "relu", True),
]


def _id(v) -> str:
    opset, bf, pick, head, dyn = v
    return f"opset{opset}-{'bf' if bf else 'tf'}-{pick}-{head}-{'dynT' if dyn else 'T9'}"


def _export(model: Classifier, opset: int, dynamic: bool, path: Path) -> Path:
    t_axis, b_axis = (1, 0) if model.batch_first else (0, 1)
    shape = [1, T_EXPORT, FEAT] if model.batch_first else [T_EXPORT, 1, FEAT]
    axes = {"x": {t_axis: "T", b_axis: "batch"}, "y": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(*shape),), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes=axes)
    return path


def _torch_predict(model: Classifier, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Float outputs [N, CLASSES] of sequences x [N, T, F] (each cut to its length)."""
    outs = []
    with torch.no_grad():
        for xi, n in zip(x, lengths):
            t = torch.from_numpy(xi[:n].astype(np.float32))[None]
            outs.append(model(t if model.batch_first else t.transpose(0, 1)).numpy().ravel())
    return np.stack(outs).astype(np.float64)


def _labeller(model: Classifier):
    return lambda xs, lengths: _torch_predict(model, xs, lengths).argmax(axis=1)


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory) -> dict[tuple, tuple[Classifier, Path]]:
    """Every selected variant's model, exported once."""
    out = {}
    for v in selected_params(request, "test_pytorch_classifier", "variant"):
        opset, batch_first, pick, head, dynamic = v
        model = Classifier(batch_first, pick, head, seed=opset + len(pick) + len(head))
        d = tmp_path_factory.mktemp(f"export{VARIANTS.index(v)}")
        out[v] = model, _export(model, opset, dynamic, d / "model.onnx")
    return out


@pytest.fixture(scope="module")
def compiled(exported) -> dict[tuple, dict | BaseException]:
    """Compile + validate (200 random sequences, y = torch's argmax) in parallel."""

    def job(v: tuple, model: Classifier, path: Path):
        return lambda: check_compiled(path, path.parent, prefix="clf", seed=v[0], n_test=200,
                                      labels=_labeller(model))

    return run_parallel({v: job(v, m, p) for v, (m, p) in exported.items()})


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_pytorch_classifier(variant, exported, request) -> None:
    model, path = exported[variant]
    x = random_sequence(path, seed=3)
    check_float(path, x)
    want = _torch_predict(model, x, np.array([x.shape[1]]))
    xo = x if model.batch_first else x.transpose(1, 0, 2)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": xo})[0]
    assert np.max(np.abs(got - want)) <= 1e-5, "the export itself differs from torch"

    require_tool("cc")
    require_tool("make")
    rep = request.getfixturevalue("compiled")[variant]
    if isinstance(rep, BaseException):
        raise rep
    agree = rep["int"]["accuracy"]
    print(f"{_id(variant)}: integer argmax agrees with float on {100 * agree:.1f} % of "
          f"{rep['n']} random sequences; SQNR {rep['int']['sqnr_db']:.1f} dB")
    assert rep["float"]["accuracy"] == 1.0  # float engine == torch
    assert agree >= 0.8
