"""Train a small LSTM speaker classifier on JapaneseVowels and export it for rnnq.

Outputs (next to this script):
  model.onnx  float model: x [1, T, 12] (batch first, T dynamic) -> logits [1, 9]
  calib.npz   x float32 [100, 29, 12]: a seeded sample of TRAINING sequences
  test.npz    x float32 [370, 29, 12], y int64 [370]: the whole official test split
  norm.json   the per-feature mean/std used to normalise x (already applied in the npz files)

Data: the copy of JapaneseVowels bundled inside the `aeon` package (no download).
9 male speakers saying the vowels /ae/; 12 LPC cepstrum coefficients per frame;
7..29 frames per utterance; 270 train / 370 test utterances; labels 1..9 -> ids 0..8.

Preprocessing (everything the model expects is already in the npz files):
  1. per-feature standardisation x' = (x - mean) / std, mean/std over all real
     frames of the training split (printed and written to norm.json);
  2. padding to T = 29 by repeating the last real frame (edge padding), so the
     LSTM's final step - the one the classifier reads - sees the utterance's end.
No `lengths` key is written: the model reads step T-1 of the padded sequence, so
every one of the 29 steps is meaningful input to it.

Run:  python train.py     (CPU, fixed seed, well under a minute)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import aeon
import numpy as np
import onnx
import onnxruntime as ort
import torch
from aeon.datasets import load_from_ts_file
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
T = 29  # longest utterance in the data set
F = 12
N_CLASSES = 9
HIDDEN = 32
EPOCHS = 300
BATCH = 32
LR = 5e-3
N_CALIB = 100


def load_split(split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Read the .ts file shipped inside aeon; returns [t_i, F] arrays and int64 ids 0..8."""
    path = Path(aeon.__file__).parent / "datasets" / "data" / "JapaneseVowels" / \
        f"JapaneseVowels_{split}.ts"
    X, y = load_from_ts_file(str(path), return_type="np-list")
    seqs = [np.asarray(s, dtype=np.float64).T for s in X]  # aeon gives [F, t_i]
    ids = np.asarray([int(v) for v in y], dtype=np.int64) - 1
    assert all(s.shape[1] == F for s in seqs)
    return seqs, ids


def pad_edge(seqs: list[np.ndarray]) -> np.ndarray:
    """[t_i, F] list -> [N, T, F] float32, repeating each sequence's last frame up to T."""
    out = np.empty((len(seqs), T, F), dtype=np.float32)
    for i, s in enumerate(seqs):
        out[i] = np.pad(s, ((0, T - len(s)), (0, 0)), mode="edge")
    return out


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(F, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.fc(h[:, -1, :])


def main() -> None:
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    tr_seqs, ytr = load_split("TRAIN")
    te_seqs, yte = load_split("TEST")
    lens = [len(s) for s in tr_seqs + te_seqs]
    assert max(lens) == T, max(lens)
    print(f"train {len(tr_seqs)}  test {len(te_seqs)}  lengths {min(lens)}..{max(lens)}")

    frames = np.concatenate(tr_seqs, axis=0)
    mean = frames.mean(axis=0)
    std = frames.std(axis=0)
    print("feature mean:", np.array2string(mean, precision=6, max_line_width=200))
    print("feature std: ", np.array2string(std, precision=6, max_line_width=200))
    (HERE / "norm.json").write_text(json.dumps(
        {"mean": mean.tolist(), "std": std.tolist(),
         "note": "x_npz = (x_raw - mean) / std, then padded to T=29 by repeating the last frame"},
        indent=1) + "\n")

    xtr = pad_edge([(s - mean) / std for s in tr_seqs])
    xte = pad_edge([(s - mean) / std for s in te_seqs])

    model = Net()
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
        if (epoch + 1) % 50 == 0:
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

    rng = np.random.default_rng(SEED)
    calib_idx = np.sort(rng.choice(len(xtr), size=N_CALIB, replace=False))
    np.savez_compressed(HERE / "calib.npz", x=xtr[calib_idx])
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
