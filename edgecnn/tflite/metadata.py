"""The "edgecnn" entry of a .tflite file's ``metadata``: what ``infer`` needs besides weights.

The entry's buffer holds UTF-8 JSON::

    {"format_version": 1, "edgecnn_version": "0.1.0", "graph_name": "lenet5",
     "preprocess": {"height": 32, "width": 32, "color": "L", ...} | null,
     "labels": ["0", "1", ...]}

``preprocess`` carries the fields of ``ir.Preprocess``. A file written by a newer edgecnn
(larger format_version) is refused rather than misread.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional

from .. import __version__, ir
from ..errors import ModelFormatError

NAME = "edgecnn"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EdgecnnMetadata:
    preprocess: Optional[ir.Preprocess]
    labels: tuple[str, ...]
    graph_name: Optional[str]
    edgecnn_version: Optional[str] = None


def encode(graph: ir.Graph) -> bytes:
    """The JSON bytes stored for ``graph``."""
    pre = None
    if graph.preprocess is not None:
        pre = dataclasses.asdict(graph.preprocess)
        pre["mean"] = [float(v) for v in pre["mean"]]
        pre["std"] = [float(v) for v in pre["std"]]
    doc = {
        "format_version": FORMAT_VERSION,
        "edgecnn_version": __version__,
        "graph_name": graph.name,
        "preprocess": pre,
        "labels": [str(label) for label in graph.labels],
    }
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def decode(data: bytes, where: str) -> EdgecnnMetadata:
    """Parse the JSON bytes; ``where`` (the file name) goes into error messages."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, integers past str limits
        raise ModelFormatError(f"{where}: the '{NAME}' metadata is not UTF-8 JSON "
                               f"({str(e)[:200]})") from None
    except RecursionError:
        raise ModelFormatError(f"{where}: the '{NAME}' metadata JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where}: the '{NAME}' metadata is not a JSON object")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFormatError(f"{where}: the '{NAME}' metadata has no valid format_version")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{where}: metadata format_version {version} was written by a newer edgecnn "
            f"({doc.get('edgecnn_version')}); this one reads up to {FORMAT_VERSION}. "
            "---> HINT: upgrade edgecnn")
    try:
        pre = _preprocess(doc.get("preprocess"))
        labels = tuple(str(label) for label in doc.get("labels") or ())
    except (TypeError, ValueError) as e:
        raise ModelFormatError(f"{where}: bad '{NAME}' metadata: {e}") from None
    name = doc.get("graph_name")
    return EdgecnnMetadata(pre, labels, name if isinstance(name, str) else None,
                           doc.get("edgecnn_version"))


def _preprocess(fields) -> Optional[ir.Preprocess]:
    if fields is None:
        return None
    if not isinstance(fields, dict):
        raise TypeError("preprocess is not an object")
    known = {f.name for f in dataclasses.fields(ir.Preprocess)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown preprocess fields {unknown}")
    pre = ir.Preprocess(**fields)
    return dataclasses.replace(
        pre, height=int(pre.height), width=int(pre.width), resize=int(pre.resize),
        mean=tuple(float(v) for v in pre.mean), std=tuple(float(v) for v in pre.std),
        invert=bool(pre.invert), color=str(pre.color))
