"""scripts/llama_native.py: which instruction sets a build uses, and when it keeps the portable
build. (The build itself runs in ``make install``; benchmarks/bench_kernels.py measures it.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import llama_native  # noqa: E402

THIS_MACHINE = {"fma", "avx", "f16c", "avx2", "avx512f", "avx512vbmi", "avx512_vnni",
                "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}  # fmt: skip


def test_the_options_follow_the_cpu_flags_and_never_use_amx() -> None:
    options = llama_native.cmake_args(THIS_MACHINE)
    assert options[:2] == ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]
    assert "-DGGML_AVX512=ON" in options and "-DGGML_AVX512_VNNI=ON" in options
    assert not any("AMX" in option for option in options)
    avx2_only = llama_native.cmake_args({"avx", "avx2", "fma", "f16c"})
    assert not any("AVX512" in option or "VNNI" in option for option in avx2_only)


def test_each_set_of_options_has_its_own_build_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path))
    one = llama_native.build_dir("0.3.36", llama_native.cmake_args(THIS_MACHINE))
    two = llama_native.build_dir("0.3.36", llama_native.cmake_args({"avx2", "avx512f"}))
    assert one != two and one.parent == two.parent == tmp_path / "llama-native"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FNCALL_LLAMA_BUILD": "portable"}, "keeping the portable build"),
        ({"CMAKE_ARGS": "-DGGML_CUDA=ON"}, "CMAKE_ARGS is your own"),
    ],
)
def test_it_keeps_the_portable_build_when_asked(tmp_path: Path, env: dict, says: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "llama_native.py")],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FNCALL_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert says in done.stdout
    assert not (tmp_path / "llama-native").exists()  # nothing was built


def test_status_reports_the_installed_build() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "llama_native.py"), "--status"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    status = json.loads(done.stdout)
    assert (
        status["installed"] == "portable" or "-DGGML_NATIVE=OFF" in status["installed"]["options"]
    )
