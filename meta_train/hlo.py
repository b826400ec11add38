"""What a compiled program communicates: the payload of the collectives in its optimized HLO.

    hlo = estimate.lower(*args).compile().as_text()
    collective_bytes(hlo)   # {"all-reduce": 7056, ...}

Each collective instruction of the text, ``%x = f32[1762]{0} all-reduce(...)`` (or a tuple of
shapes, or the asynchronous ``all-reduce-start``), counts the bytes of its result shapes. The
benchmark (``benchmarks/scaling.py``) and the sharding test read meta-training's one all-reduce
of theta-sized vectors per outer step with it.
"""

from __future__ import annotations

import re

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
_COLLECTIVE = re.compile(rf"=\s*(.*?)\s+({'|'.join(KINDS)})(-start)?\(")
_SHAPE = re.compile(r"\b(pred|[subf]\d+|bf16)\[([\d,]*)\]")


def collective_bytes(hlo_text: str) -> dict[str, int]:
    """Payload bytes per collective kind (a key of :data:`KINDS`) in an optimized HLO module's
    text; kinds that do not occur are absent."""
    out: dict[str, int] = {}
    for m in _COLLECTIVE.finditer(hlo_text):
        size = 0
        for dtype, dims in _SHAPE.findall(m.group(1)):
            n = 1
            for d in filter(None, dims.split(",")):
                n *= int(d)
            bits = 8 if dtype == "pred" else int(dtype.lstrip("bfsu"))  # f32, s8, u16, bf16
            size += n * bits // 8
        out[m.group(2)] = out.get(m.group(2), 0) + size
    return out
