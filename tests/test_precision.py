"""Training precision comes from the hardware: bf16 only where the CPU runs it natively."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventcoder.training.config import ConfigError, TrainConfig
from eventcoder.training.precision import choose_precision, cpu_flags, native_bf16_cpu

AVX2_FLAGS = {"fpu", "sse4_2", "avx", "avx2", "fma"}
SAPPHIRE_FLAGS = AVX2_FLAGS | {"avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}


def test_avx2_only_cpu_trains_in_fp32() -> None:
    precision = choose_precision("auto", flags=AVX2_FLAGS, environ={})
    assert precision.bf16 is False
    assert "emulated" in precision.reason


def test_native_bf16_cpu_uses_bf16() -> None:
    precision = choose_precision("auto", flags=SAPPHIRE_FLAGS, environ={})
    assert precision.bf16 is True
    assert "avx512_bf16" in precision.reason


@pytest.mark.parametrize("environ", [{"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}])
def test_isa_switches_make_a_bf16_cpu_choose_like_an_avx2_one(environ: dict[str, str]) -> None:
    native, reason = native_bf16_cpu(SAPPHIRE_FLAGS, environ)
    assert native is False
    assert next(iter(environ)) in reason


def test_forcing_overrides_the_hardware() -> None:
    assert choose_precision(True, flags=AVX2_FLAGS, environ={}).bf16 is True
    assert choose_precision(False, flags=SAPPHIRE_FLAGS, environ={}).bf16 is False


def test_cpu_flags_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("raw,expected", [("auto", "auto"), (True, True), ("no", False), ("true", True)])
def test_bf16_setting_accepts_auto_and_booleans(raw: object, expected: object) -> None:
    assert TrainConfig.from_dict({"bf16": raw}).bf16 == expected


def test_bf16_setting_rejects_other_words() -> None:
    with pytest.raises(ConfigError, match="bf16"):
        TrainConfig.from_dict({"bf16": "maybe"}, source="x.yaml")


def test_default_config_chooses_precision_automatically() -> None:
    assert TrainConfig.from_yaml(Path(__file__).resolve().parent.parent / "configs" / "default.yaml").bf16 == "auto"
