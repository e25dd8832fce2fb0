"""Tests that only mean something inside the arm64 CI stage (.ci/arm64/run.sh), which sets
EDGECNN_EXPECT_ISA to the kernel path each emulated Raspberry Pi CPU must take and
EDGECNN_EXPECT_TFLITE_RUNTIME=1 in the venv that has tflite-runtime. Elsewhere they are not
collected (they have nothing to check there), so the x86 run reports no skips."""

import os

collect_ignore = []
if not os.environ.get("EDGECNN_EXPECT_ISA"):
    collect_ignore.append("test_arm64_cpu.py")
if os.environ.get("EDGECNN_EXPECT_TFLITE_RUNTIME") != "1":
    collect_ignore.append("test_tflite_runtime.py")
