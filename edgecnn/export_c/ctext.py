"""Text from a model, made safe to put into generated C, Makefiles and READMEs.

Names in a model file (tensors, layers, labels, the file name itself) come from whoever made
the file. None of them may reach generated code as written: a name holding ``*/`` would close
a comment and add code, a backslash-newline would splice lines, ``??/`` is a trigraph under
``-std=c99``. So:

- identifiers are edgecnn's own (``l<index>_<safe part>``), never a model's name;
- comments carry a name only through ``comment()``: a whitelist of characters that cannot
  end a comment, splice a line or form a trigraph, bounded in length;
- string literals go through ``c_string()``: every byte outside printable ASCII, and the
  quote, backslash, question mark, star and dollar sign, as an octal escape (so not even a
  literal holds a comment terminator or a template placeholder).
"""

from __future__ import annotations

import re

# No '*' (ends a comment), no '\\' (splices lines), no '?' (trigraphs), no '$' (templates),
# no control characters; '/' is harmless once '*' is gone.
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9 _.,:;/()\[\]#+=@%<>{}!&|~^'\"-]")
_IDENT_SAFE = re.compile(r"[^A-Za-z0-9_]")
COMMENT_LIMIT = 60


def comment(text, limit: int = COMMENT_LIMIT) -> str:
    """``text`` for use inside ``/* ... */``: unsafe characters become ``_``, long text is cut."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    safe = _COMMENT_SAFE.sub("_", str(text))
    return safe if len(safe) <= limit else safe[:limit - 3] + "..."


def identifier(index: int, name: str, prefix: str = "l", limit: int = 24) -> str:
    """An identifier that is edgecnn's own: unique by ``index``, readable from ``name``."""
    part = _IDENT_SAFE.sub("_", str(name))[:limit].strip("_")
    return f"{prefix}{index}_{part}" if part else f"{prefix}{index}"


def c_string(text) -> str:
    """A C string literal holding ``text`` (UTF-8) exactly, with nothing a compiler could
    read as anything but string bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    out = []
    for b in data:
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in '"\\?*$':
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")  # octal escapes stop after 3 digits: no run-on
    return '"' + "".join(out) + '"'


def markdown(text, limit: int = COMMENT_LIMIT) -> str:
    """A name for a generated README: the comment whitelist, inside backticks."""
    return "`" + comment(text, limit).replace("`", "_") + "`"
