"""The LiteRT profile of the simulator: a `TGraph` evaluated with the integer semantics of
LiteRT's builtin kernels (the specification a `.tflite` is held to, bit for bit), or in float32
(calibration). `interpreter.run` is the entry point; its kernel tables are built there, in one
place, from the kernel modules (`arith`, `layout`, `control`, `lstm`)."""
