"""Train a small GRU activity classifier on BasicMotions and export it for rnnq.

Outputs (next to this script):
  model.onnx  float model: x [1, T, 6] (batch first, T dynamic) -> logits [1, 4]
  calib.npz   x float32 [40, 100, 6]: all 40 TRAINING sequences (calibration)
  test.npz    x float32 [40, 100, 6], y int64 [40]: the whole official test split
  norm.json   the per-channel mean/std used to normalise x (already applied in the npz files)

Data: the copy of BasicMotions bundled inside the `aeon` package (no download;
the script refuses to run if the bundled files are missing). A smart watch
records 3-axis accelerometer + 3-axis gyroscope at 10 Hz for 10 s (T = 100,
6 channels) while a person is standing, walking, running or playing badminton.
40 train / 40 test sequences, 10 per class in each split.
Class ids are the sorted label names: badminton 0, running 1, standing 2, walking 3.

Preprocessing (everything the model expects is already in the npz files):
  per-channel standardisation x' = (x - mean) / std, with mean/std over all
  time steps of all training sequences (printed and written to norm.json).
All sequences have the same length (100), so no padding and no `lengths` key.

Run:  python train.py     (CPU, fixed seed, well under a minute)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import aeon.datasets._data_loaders as aeon_loaders
import numpy as np
import onnx
import onnxruntime as ort
import torch
from aeon.datasets import load_classification
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
T = 100
F = 6
N_CLASSES = 4
HIDDEN = 32
EPOCHS = 200
BATCH = 8
LR = 5e-3
CLASSES = ["badminton", "running", "standing", "walking"]
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]


def _no_download(*args, **kwargs):
    raise RuntimeError("train.py must use aeon's bundled BasicMotions; refusing to download")


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Bundled BasicMotions split -> x float64 [N, T, F], y int64 [N]."""
    bundled = Path(aeon_loaders.MODULE) / "data" / "BasicMotions" / f"BasicMotions_{split}.ts"
    assert bundled.is_file(), f"bundled file missing: {bundled}"
    aeon_loaders._download_all_zenodo_files = _no_download  # belt and braces: never go online
    X, y = load_classification("BasicMotions", split=split)
    x = np.asarray(X, dtype=np.float64).transpose(0, 2, 1)  # aeon gives [N, F, T]
    assert x.shape[1:] == (T, F), x.shape
    ids = np.asarray([CLASSES.index(str(v)) for v in y], dtype=np.int64)
    return x, ids


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(F, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        return self.fc(h[:, -1, :])


def main() -> None:
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    xtr_raw, ytr = load_split("TRAIN")
    xte_raw, yte = load_split("TEST")
    print(f"train {len(xtr_raw)}  test {len(xte_raw)}  T {T}  F {F}")
    print("train class counts:", np.bincount(ytr).tolist(),
          " test class counts:", np.bincount(yte).tolist())

    mean = xtr_raw.reshape(-1, F).mean(axis=0)
    std = xtr_raw.reshape(-1, F).std(axis=0)
    print("channel mean:", np.array2string(mean, precision=6, max_line_width=200))
    print("channel std: ", np.array2string(std, precision=6, max_line_width=200))
    (HERE / "norm.json").write_text(json.dumps(
        {"channels": CHANNELS, "mean": mean.tolist(), "std": std.tolist(),
         "classes": CLASSES, "note": "x_npz = (x_raw - mean) / std per channel"},
        indent=1) + "\n")

    xtr = ((xtr_raw - mean) / std).astype(np.float32)
    xte = ((xte_raw - mean) / std).astype(np.float32)
    print(f"normalised |x| max: train {np.abs(xtr).max():.3f}  test {np.abs(xte).max():.3f}")

    model = Net()
    print("parameters:", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
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
        if (epoch + 1) % 25 == 0:
            model.eval()
            with torch.no_grad():
                acc_tr = (model(xt).argmax(1) == yt).float().mean().item()
            print(f"epoch {epoch + 1:4d}  loss {total / len(xt):.4f}  train acc {acc_tr:.4f}")
    train_s = time.perf_counter() - t_train
    print(f"training time: {train_s:.1f} s")

    model.eval()
    onnx_path = HERE / "model.onnx"
    x0 = torch.from_numpy(xte[:1])
    torch.onnx.export(model, x0, str(onnx_path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {1: "T"}})
    onnx.checker.check_model(onnx.load(str(onnx_path)))
    print("ONNX nodes:", [n.op_type for n in onnx.load(str(onnx_path)).graph.node])

    np.savez_compressed(HERE / "calib.npz", x=xtr)
    np.savez_compressed(HERE / "test.npz", x=xte, y=yte)

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pred = np.array([int(np.argmax(sess.run(None, {"x": xte[i : i + 1]})[0]))
                     for i in range(len(xte))])
    correct = int((pred == yte).sum())
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(xte)).argmax(1).numpy()
    print(f"torch test accuracy (batched): {(torch_pred == yte).mean():.4f}")
    print(f"float test accuracy (onnxruntime, batch 1): {correct}/{len(yte)} = "
          f"{correct / len(yte):.4f}")
    for name in ("model.onnx", "calib.npz", "test.npz"):
        print(f"  {name}: {os.path.getsize(HERE / name)} bytes")
    print(f"total time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
