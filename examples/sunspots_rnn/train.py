"""Train a small vanilla-RNN sunspot forecaster and export it for rnnq.

Outputs (next to this script):
  model.onnx  float model: x [1, T, 1] (batch first, T dynamic) -> y [1, 1]
  calib.npz   x float32 [228, 24, 1]: all TRAINING windows (calibration)
  test.npz    x float32 [57, 24, 1], y float32 [57, 1]: the chronologically last
              20 % of windows (held out; targets are the years 1952..2008)

Data: the yearly sunspot numbers bundled with statsmodels
(`statsmodels.api.datasets.sunspots.load_pandas()`, no download): 309 values,
years 1700..2008, column SUNACTIVITY (0 .. 190.2).

Preprocessing (already applied in the npz files): every value is divided by
SCALE = 100, so model units = sunspot number / 100 (zero stays zero; no offset).
A window is the W = 24 consecutive (scaled) yearly values before a year; the
target is that year's scaled value. 309 - 24 = 285 windows, in time order; the
first 228 are training windows, the last 57 test windows. No training target
is a test target (the last training target is 1951).

Run:  python train.py     (CPU, fixed seed, well under a minute)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import statsmodels.api as sm
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
W = 24          # window length (years)
SCALE = 100.0   # model units = sunspot number / SCALE
TEST_FRAC = 0.2
HIDDEN = 32
EPOCHS = 400
BATCH = 32
LR = 3e-3


def make_windows(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """series [L] -> x [L-W, W, 1], y [L-W, 1] (next value), index of the target."""
    n = len(series) - W
    x = np.stack([series[i : i + W] for i in range(n)])[:, :, None]
    y = series[W:, None]
    return x.astype(np.float32), y.astype(np.float32), np.arange(W, len(series))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(1, HIDDEN, batch_first=True)  # tanh
        self.fc = nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.fc(h[:, -1, :])


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def main() -> None:
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    df = sm.datasets.sunspots.load_pandas().data
    years = df["YEAR"].to_numpy().astype(int)
    raw = df["SUNACTIVITY"].to_numpy(dtype=np.float64)
    assert np.all(np.diff(years) == 1)
    print(f"{len(raw)} yearly values {years[0]}..{years[-1]}, range {raw.min()}..{raw.max()}")

    x, y, tgt = make_windows(raw / SCALE)
    n_test = round(TEST_FRAC * len(x))
    n_train = len(x) - n_test
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    print(f"windows {len(x)}: train {n_train} (targets {years[tgt[0]]}..{years[tgt[n_train - 1]]}),"
          f" test {n_test} (targets {years[tgt[n_train]]}..{years[tgt[-1]]})")

    # naive baseline: next year = this year
    persist = rmse(xte[:, -1, :], yte)
    print(f"persistence baseline test rmse: {persist:.5f} (model units) = "
          f"{persist * SCALE:.2f} sunspots")

    model = Net()
    print("parameters:", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    loss_fn = nn.MSELoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    t_train = time.perf_counter()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if (epoch + 1) % 50 == 0:
            print(f"epoch {epoch + 1:4d}  train mse {total / len(xt):.5f}")
    train_s = time.perf_counter() - t_train
    print(f"training time: {train_s:.1f} s")

    model.eval()
    onnx_path = HERE / "model.onnx"
    x0 = torch.from_numpy(xte[:1])
    torch.onnx.export(model, x0, str(onnx_path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {1: "T"}})
    onnx.checker.check_model(onnx.load(str(onnx_path)))
    print("ONNX nodes:", [n.op_type for n in onnx.load(str(onnx_path)).graph.node])

    np.savez_compressed(HERE / "calib.npz", x=xtr)
    np.savez_compressed(HERE / "test.npz", x=xte, y=yte)

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pred = np.concatenate([sess.run(None, {"x": xte[i : i + 1]})[0] for i in range(len(xte))])
    with torch.no_grad():
        torch_tr = model(xt).numpy()
        torch_te = model(torch.from_numpy(xte)).numpy()
    print(f"torch train rmse (batched): {rmse(torch_tr, ytr):.5f}")
    print(f"torch test rmse (batched):  {rmse(torch_te, yte):.5f}")
    r = rmse(pred, yte)
    print(f"float test rmse (onnxruntime, batch 1): {r:.5f} (model units) = "
          f"{r * SCALE:.2f} sunspots")
    for name in ("model.onnx", "calib.npz", "test.npz"):
        print(f"  {name}: {os.path.getsize(HERE / name)} bytes")
    print(f"total time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
