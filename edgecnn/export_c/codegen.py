"""The C-writing context the ops' ``emit_c`` use: const arrays (flash), parameter records.

Field names of the records are those of edgecnn/reference/params.py; doubles are written as C99
hex float literals, so every scale reaches the C compiler exactly.
"""

from __future__ import annotations

import numpy as np

from ..reference import params as P

def c_double(v: float) -> str:
    return float(v).hex()  # C99 hex float literal: exact, no decimal round trip


class Constants:
    """const arrays in flash, 4-byte aligned, counted for the flash report."""

    CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
              np.dtype(np.int32): "int32_t", np.dtype(np.float32): "float",
              np.dtype(np.float64): "double"}

    def __init__(self):
        self.chunks = []
        self.bytes = 0

    def add(self, name: str, values, dtype) -> str:
        a = np.ascontiguousarray(values, dtype).ravel()
        ctype = self.CTYPES[np.dtype(dtype)]
        floating = a.dtype.kind == "f"  # hex literals: a float32 value is exact as a double
        fmt = c_double if floating else str
        per_line = 4 if floating else 16
        lines = [", ".join(fmt(v) for v in a[i:i + per_line].tolist())
                 for i in range(0, a.size, per_line)]
        body = ",\n    ".join(lines)
        self.chunks.append(f"static const {ctype} {name}[{a.size}] EC_ALIGN(4) = {{\n"
                           f"    {body}}};\n")
        self.bytes += a.nbytes
        return name

    def text(self) -> str:
        return "".join(self.chunks)


def _struct(ctype: str, name: str, fields: dict) -> str:
    body = ", ".join(f".{k} = {v}" for k, v in fields.items())
    return f"static const {ctype} {name} = {{{body}}};\n"

class CContext:
    """What an op's ``emit_c`` writes with: pointers to its inputs and output in the arena,
    const arrays (flash) and parameter records under identifiers that are edgecnn's own
    (``prefix``: ctext.identifier, never a name from the model). ``scratch``: the arena
    address of the node's kernel scratch (kernels.py sizes it), "0" when it has none; ``log``:
    the rounding policies and per-node notes kernels.ExportLog collects for ec_config.h, the
    summary and README."""

    def __init__(self, consts: Constants, records: list, prefix: str, srcs: list, dst: str,
                 scratch: str = "0", log=None):
        self.consts, self.records, self.prefix = consts, records, prefix
        self._srcs, self._dst = srcs, dst
        self.scratch, self.log = scratch, log

    def src_raw(self, i: int) -> str:
        return self._srcs[i]

    @property
    def dst_raw(self) -> str:
        return self._dst

    def src(self, i: int) -> str:
        return f"(const int8_t *)({self._srcs[i]})"

    @property
    def dst(self) -> str:
        return f"(int8_t *)({self._dst})"

    @staticmethod
    def double(v: float) -> str:
        return c_double(v)

    def const(self, suffix: str, values, dtype) -> str:
        return self.consts.add(f"{self.prefix}_{suffix}", values, dtype)

    def struct(self, ctype: str, suffix: str, fields: dict) -> str:
        self.records.append(_struct(ctype, f"{self.prefix}_{suffix}", fields))
        return f"&{self.prefix}_{suffix}"

    def struct_array(self, ctype: str, suffix: str, values: list) -> str:
        """A static array of ``ctype`` (e.g. pointers into the arena: address constants)."""
        name = f"{self.prefix}_{suffix}"
        self.records.append(f"static {ctype} {name}[{len(values)}] = {{{', '.join(values)}}};\n")
        return name

    def params(self, ctype: str, record, suffix: str = "params") -> str:
        """A parameter record whose fields are the dataclass ``record``'s (all ints)."""
        return self.struct(ctype, suffix, {k: int(getattr(record, k))
                                           for k in record.__dataclass_fields__})

    def dims(self, which: str, shape3) -> str:
        return self.struct("ec_dims_t", which, dict(zip("hwc", shape3)))

    def requant(self, rq: P.Requant, channels: int) -> str:
        """Per-tensor arrays (length 1) are broadcast: the C kernels index them per channel;
        only the arrays the policy reads are written."""
        if self.log is not None:
            self.log.policies.add(rq.policy)
        rq = P.Requant(*(np.broadcast_to(a, (channels,)) for a in (rq.multiplier, rq.shift,
                                                                      rq.real_scale)),
                       rq.policy, rq.output_offset, rq.act_min, rq.act_max)
        uses_m0 = rq.policy in (P.POLICY_DOUBLE, P.POLICY_SINGLE)
        fields = {
            "multiplier": self.const("multiplier", rq.multiplier, np.int32) if uses_m0 else "0",
            "shift": self.const("shift", rq.shift, np.int32) if uses_m0 else "0",
            "real_scale": "0" if uses_m0 else self.const("real_scale", rq.real_scale, np.float64),
            "policy": rq.policy, "output_offset": rq.output_offset, "act_min": rq.act_min,
            "act_max": rq.act_max}
        return self.struct("ec_requant_t", "requant", fields)
