"""Which float precision training runs in, chosen from the hardware.

bf16 autocast pays only where the CPU computes bf16 natively (AVX-512 BF16 or AMX). Elsewhere
(AVX2-only x86, most laptops, ARM) torch emulates it and a training step is ~10x slower than fp32.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which oneDNN still has native bf16 kernels
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512_AMX_2", "ALL")


@dataclass(frozen=True)
class Precision:
    bf16: bool
    reason: str

    @property
    def name(self) -> str:
        return "bf16 autocast" if self.bf16 else "fp32"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags Linux reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16_cpu(flags: set[str] | None = None, environ: dict[str, str] | None = None) -> tuple[bool, str]:
    """(True, why) where this CPU runs bf16 matrix maths natively, else (False, why).

    Respects the switches that make torch act like an older CPU (`ATEN_CPU_CAPABILITY`,
    `ONEDNN_MAX_CPU_ISA`), so an AVX-512 machine can be made to choose as an AVX2 one would."""
    env = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    aten = env.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten and not aten.startswith("avx512"):
        return False, f"ATEN_CPU_CAPABILITY={aten} limits torch below AVX-512"
    onednn = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if onednn and onednn not in _ONEDNN_BF16_ISAS:
        return False, f"ONEDNN_MAX_CPU_ISA={onednn} has no native bf16"
    found = [f for f in NATIVE_BF16_FLAGS if f in flags]
    if found:
        return True, f"the CPU has {', '.join(found)}"
    machine = platform.machine() or "this CPU"
    return False, f"{machine} CPU without avx512_bf16 or amx_bf16: bf16 would be emulated (~10x slower than fp32)"


def choose_precision(setting: str | bool, flags: set[str] | None = None,
                     environ: dict[str, str] | None = None) -> Precision:
    """`setting` is the config's `bf16`: "auto" (from the hardware), True or False (forced)."""
    if setting is True:
        return Precision(True, "forced by bf16: true")
    if setting is False:
        return Precision(False, "forced by bf16: false")
    native, why = native_bf16_cpu(flags, environ)
    return Precision(native, f"auto: {why}")
