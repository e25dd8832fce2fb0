"""libFuzzer entry point for one target (run by fuzz/run_all.py --engine atheris):

    python fuzz/atheris_target.py tflite CORPUS_DIR -max_total_time=300

The edgecnn parsers are instrumented for coverage; an input that raises anything but an
EdgecnnError is a crash, one that runs past -timeout a hang.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.setrecursionlimit(3000)

with atheris.instrument_imports(include=["edgecnn"]):
    import edgecnn.converters.arch  # noqa: F401
    import edgecnn.converters.onnx_model  # noqa: F401
    import edgecnn.converters.onnx_layers  # noqa: F401
    import edgecnn.converters.onnx_ops  # noqa: F401
    import edgecnn.converters.onnx_shape_ops  # noqa: F401
    import edgecnn.converters.pt_reader  # noqa: F401
    import edgecnn.preprocess  # noqa: F401
    import edgecnn.tflite.reader  # noqa: F401
    import edgecnn.prepare  # noqa: F401
    import edgecnn.quant_rules  # noqa: F401
    import edgecnn.runtime  # noqa: F401

from targets import TARGETS, run_one  # noqa: E402


def main():
    target = sys.argv.pop(1)
    if target not in TARGETS:
        sys.exit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")

    def test_one_input(data: bytes):
        run_one(target, data)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
