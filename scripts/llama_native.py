"""Build llama.cpp for the instruction sets this CPU can execute, prove it runs, then use it.

``make install`` runs this after the pinned packages are in place. pip's ``llama-cpp-python``
wheel is built portable (``GGML_NATIVE=OFF``: AVX2 at most), because its cache is shared and a
``-march=native`` build of the pinned version died with *Illegal instruction* (in the AMX path)
on the very machine that built it. Here the instruction sets are read from ``/proc/cpuinfo`` and
turned on one by one (AVX-512 and its VNNI/VBMI/BF16 extensions, AVX-VNNI; never AMX), the wheel
is built into ``$FNCALL_HOME/llama-native/<key>/`` (the key: version and options, so a shared
cache holds one build per CPU kind), and it is smoke-tested in a separate process (load the
smallest embedded model, decode a few greedy tokens) before it replaces the portable build.
A build or a smoke test that fails is recorded next to it and the portable build stays; the
next install does not try again.

``FNCALL_LLAMA_BUILD=portable`` keeps the portable build, and so does a ``CMAKE_ARGS`` of your
own (a CUDA build, say). ``--status`` prints what is installed.
Run: .venv/bin/python scripts/llama_native.py [--status]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PACKAGE = "llama-cpp-python"
PORTABLE = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"  # the Makefile's CMAKE_ARGS
# /proc/cpuinfo flag -> the ggml CMake option that uses it. AMX (amx_tile, amx_int8, amx_bf16)
# is left out on purpose: the build that used it crashed here.
OPTIONS = {
    "avx": "GGML_AVX",
    "avx2": "GGML_AVX2",
    "fma": "GGML_FMA",
    "f16c": "GGML_F16C",
    "avx_vnni": "GGML_AVX_VNNI",
    "avx512f": "GGML_AVX512",
    "avx512vbmi": "GGML_AVX512_VBMI",
    "avx512_vnni": "GGML_AVX512_VNNI",
    "avx512_bf16": "GGML_AVX512_BF16",
}
# Beyond AVX2 the build gains nothing over the portable wheel.
BEYOND_PORTABLE = {"avx_vnni", "avx512f"}
SMOKE = """
import sys, llama_cpp, numpy as np
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
batch, out = llm.tokenize(b"The capital of France is", add_bos=True), []
for _ in range(8):
    llm.eval(batch)
    logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    out.append(int(np.argmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),)))))
    batch = [out[-1]]
print(" ".join(map(str, out)))
print(llama_cpp.__file__)
"""


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(flags: set[str]) -> list[str]:
    return ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"] + [
        f"-D{option}=ON" for flag, option in OPTIONS.items() if flag in flags
    ]


def home() -> Path:
    return Path(os.environ.get("FNCALL_HOME") or Path.home() / ".cache" / "fncall")


def build_dir(version: str, args: list[str]) -> Path:
    key = hashlib.sha256(json.dumps([version, args]).encode()).hexdigest()[:12]
    return home() / "llama-native" / f"{version}-{key}"


def smoke_model() -> Path | None:
    """The smallest embedded model, if assembled (``fncall models install smollm2-135m``)."""
    from fncall.errors import UserError
    from fncall.models import install_model

    try:
        return install_model("smollm2-135m", progress=False)
    except UserError as exc:
        print(f"llama-native: no model to smoke-test with ({exc})")
        return None


def smoke(model: Path, path_first: Path | None) -> tuple[bool, str]:
    """Run the smoke script in a fresh process, importing llama_cpp from ``path_first`` if
    given; (ok, output or the reason it failed)."""
    env = dict(os.environ)
    if path_first is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path_first), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", SMOKE, str(model)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "the smoke test took more than 300 s"
    if done.returncode != 0:
        signal = f" (signal {-done.returncode})" if done.returncode < 0 else ""
        return False, f"exit {done.returncode}{signal}: {done.stderr.strip()[-400:]}"
    return True, done.stdout.strip()


def pip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], env=env, text=True, capture_output=True, check=False
    )


def unpack(wheel_or_spec: str, target: Path, *, portable: bool = False) -> None:
    """Install one build into its own folder (``PYTHONPATH=target`` then imports it): a wheel,
    or with ``portable`` the pinned version as pip builds it portable (from pip's cache)."""
    env = {**os.environ, "CMAKE_ARGS": PORTABLE} if portable else None
    done = pip("install", "-q", "--no-deps", "--target", str(target), wheel_or_spec, env=env)
    if done.returncode != 0:
        raise SystemExit(f"could not unpack {wheel_or_spec}: {done.stderr[-2000:]}")


def portable_spec() -> str:
    return f"{PACKAGE}=={metadata.version(PACKAGE)}"


def record(folder: Path, **status: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "status.json").write_text(json.dumps(status, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--status", action="store_true", help="say what is installed and stop")
    args = parser.parse_args()
    version = metadata.version(PACKAGE)
    flags = cpu_flags()
    options = cmake_args(flags)
    folder = build_dir(version, options)
    status_file = folder / "status.json"
    status = json.loads(status_file.read_text()) if status_file.is_file() else None
    installed = json.loads(metadata.distribution(PACKAGE).read_text("fncall-build.json") or "{}")
    if args.status:
        print(json.dumps({"installed": installed or "portable", "build": status}, indent=2))
        return 0
    if os.environ.get("FNCALL_LLAMA_BUILD") == "portable":
        print("llama-native: FNCALL_LLAMA_BUILD=portable; keeping the portable build")
        return 0
    if os.environ.get("CMAKE_ARGS", PORTABLE) != PORTABLE:
        print("llama-native: CMAKE_ARGS is your own; keeping the build it made")
        return 0
    if platform.machine() not in ("x86_64", "AMD64") or not flags & BEYOND_PORTABLE:
        print("llama-native: this CPU has nothing beyond the portable build's AVX2; keeping it")
        return 0
    if installed.get("options") == options:
        print(f"llama-native: the native build is installed ({' '.join(options[2:])})")
        return 0
    if status is not None and not status.get("ok"):
        print(f"llama-native: an earlier native build failed ({status.get('reason')}); portable")
        return 0
    model = smoke_model()
    if model is None:
        return 0
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        print(f"llama-native: building {PACKAGE}=={version} with {' '.join(options[2:])}")
        print("llama-native: this takes ~10 minutes on 2 cores, once per CPU kind")
        started = time.monotonic()
        env = {**os.environ, "CMAKE_ARGS": " ".join(options)}
        command = ["wheel", "--no-deps", "--no-cache-dir", f"{PACKAGE}=={version}"]
        built = pip(*command, "-w", str(folder), env=env)
        wheels = sorted(folder.glob("*.whl"))
        if built.returncode != 0 or not wheels:
            record(folder, ok=False, reason=f"build failed: {built.stderr.strip()[-400:]}")
            print("llama-native: the build failed; keeping the portable build")
            return 0
        print(f"llama-native: built in {time.monotonic() - started:.0f} s")
    with tempfile.TemporaryDirectory() as target:
        unpacked = pip("install", "--no-deps", "--target", target, "-q", str(wheels[-1]))
        if unpacked.returncode != 0:
            record(folder, ok=False, reason=f"unpacking failed: {unpacked.stderr[-400:]}")
            return 0
        ok, native_out = smoke(model, Path(target))
        if not ok or target not in native_out:
            record(folder, ok=False, reason=f"smoke test: {native_out}")
            print(f"llama-native: the native build failed its smoke test ({native_out})")
            return 0
        _, portable_out = smoke(model, None)
    same = native_out.splitlines()[0] == portable_out.splitlines()[0]
    installed_now = pip("install", "--no-deps", "--force-reinstall", "-q", str(wheels[-1]))
    if installed_now.returncode != 0:
        record(folder, ok=False, reason=f"install failed: {installed_now.stderr[-400:]}")
        return 0
    note = {"options": options, "wheel": str(wheels[-1]), "same_greedy_tokens": same}
    record(folder, ok=True, reason="", **note)
    _mark_installed(note)
    print(
        f"llama-native: installed the native build; smoke test passed "
        f"({'same' if same else 'different'} greedy tokens as the portable build)"
    )
    return 0


def _mark_installed(note: dict[str, object]) -> None:
    """Leave a note inside the installed distribution's metadata folder, so ``--status`` and
    the next install know which build is in place (a reinstall from pip removes it)."""
    dist = metadata.distribution(PACKAGE)
    for file in dist.files or ():
        if file.name == "METADATA":
            Path(str(file.locate())).with_name("fncall-build.json").write_text(json.dumps(note))
            return


if __name__ == "__main__":
    sys.exit(main())
