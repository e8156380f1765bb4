"""Using a trained model: predict on recordings of any length, streaming, engines, ONNX export, VAD, the shipped model."""
