"""Speech streams for the VAD example and its test: English sentences synthesised by espeak-ng
(six voices, three speaking rates) with pauses of 0.2-1.5 s between them, each sentence at its
own level (-14 to 0 dB), plus white noise (-66 to -40 dB): nothing to download or ship.

    python examples/silero_vad/speech.py out.npz N K SEED

writes a stream file for silero VAD: `input` [N, K, 1, 576] float32 (each call: the 64 samples
before the chunk, then its 512 new samples; 16 kHz, 32 ms per call).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave

import numpy as np

RATE, CHUNK, CONTEXT = 16000, 512, 64
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn the lights off in the kitchen when you leave.",
    "Seven hundred and twenty three people attended the meeting on Tuesday.",
    "Could you tell me the way to the railway station?",
    "It was raining heavily, so we stayed inside and played cards.",
    "Embedded engineers often count every byte of memory.",
    "She sells sea shells by the sea shore.",
    "Turn left at the second crossing and keep going straight.",
)
VOICES = ("en", "en-us", "en+f3", "en+m3", "en-gb-x-rp", "en+f5")


def espeak() -> str:
    """The espeak-ng program, or a one-line error saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng)")
    return exe


def say(text: str, voice: str, words_per_minute: int) -> np.ndarray:
    """One sentence as float64 samples at 16 kHz in [-1, 1] (espeak-ng's 22,050 Hz output
    resampled by zero-padding/truncating its spectrum)."""
    wav = subprocess.run([espeak(), "-v", voice, "-s", str(words_per_minute), "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        a = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
    n = round(a.size * RATE / rate)
    return np.fft.irfft(np.fft.rfft(a)[: n // 2 + 1], n) * n / a.size


def audio(seconds: float, seed: int) -> np.ndarray:
    """`seconds` of sentences and pauses with noise, float64 at 16 kHz."""
    r = np.random.default_rng(seed)
    need = int(seconds * RATE)
    parts = [np.zeros(int(r.uniform(0.2, 1.0) * RATE))]
    while sum(p.size for p in parts) < need:
        s = say(SENTENCES[r.integers(len(SENTENCES))], VOICES[r.integers(len(VOICES))],
                int(r.choice([130, 160, 190])))
        parts += [s * 10 ** (r.uniform(-14, 0) / 20), np.zeros(int(r.uniform(0.2, 1.5) * RATE))]
    a = np.concatenate(parts)[:need]
    return a + 10 ** (r.uniform(-66, -40) / 20) * r.standard_normal(a.size)


def chunks(a: np.ndarray) -> np.ndarray:
    """Audio -> silero's calls [K, 1, 576]: 64 samples of context (zeros before the start),
    then 512 new samples."""
    k = a.size // CHUNK
    padded = np.concatenate([np.zeros(CONTEXT), a[: k * CHUNK]])
    idx = np.arange(k)[:, None] * CHUNK + np.arange(CONTEXT + CHUNK)[None, :]
    return padded[idx][:, None, :].astype(np.float32)


def stream(n: int, k: int, seed: int) -> np.ndarray:
    """n independent streams of k calls: [n, k, 1, 576] float32."""
    return np.stack([chunks(audio(k * CHUNK / RATE, seed * 1000 + i)) for i in range(n)])


if __name__ == "__main__":
    out, n, k, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    np.savez(out, input=stream(n, k, seed))
