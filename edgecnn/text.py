"""Names from a model or the file system, made safe to print on a terminal.

A model's labels, layer and tensor names and the image file names a user downloaded can hold
terminal escape sequences (``ESC [ 2 K`` erases a line), carriage returns, newlines and bidi
overrides that redraw or reorder what was printed before them, and so spoof result lines.
``printable`` shows every such character as a Python-style escape (``\\x1b``, ``\\r``,
``\\u202e``) and leaves all other text, non-ASCII letters included, as it is. Every place the
CLI prints such a name goes through it; JSON output needs nothing (json.dumps escapes control
characters itself).
"""

from __future__ import annotations

import unicodedata

# control (Cc), format (Cf: bidi overrides, zero-width joiners), surrogates, private use,
# unassigned, line and paragraph separators
_HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value, limit: int = 0) -> str:
    """``value`` as text with every control or format character escaped; cut to ``limit``
    characters plus ``...`` when ``limit`` is given."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif unicodedata.category(ch) in _HIDDEN:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    shown = "".join(out)
    return shown if not limit or len(shown) <= limit else shown[:limit] + "..."


def layer_label(name: str, limit: int) -> str:
    """A tensor or layer name for a table column: TensorFlow's converter joins every fused op's
    name with ';' (hundreds of characters), so the first one stands for the layer, cut to
    ``limit`` (``--json`` output keeps the whole name)."""
    return printable(name.split(";")[0], limit)
