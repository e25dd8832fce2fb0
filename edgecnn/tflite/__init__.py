"""Reading and writing .tflite flatbuffers."""
