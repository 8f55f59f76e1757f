"""`--format tflite`: an integer-only model.tflite for LiteRT. support.py says what can be
expressed; lower.py / lower_rnn.py map the float IR onto TFLite builtins; quantize.py and
lstm_quant.py quantise that graph the way LiteRT's kernels read it; roll.py makes WHILE loops;
emit.py checks and encodes the file (writer.py); reader.py reads any .tflite back; runtime.py
runs one in LiteRT and TFLite Micro."""
