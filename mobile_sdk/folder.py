"""The export folder: one object with one reader, and the one way to write it.

An export folder holds the artifacts (`PLATFORM/TOWER_PRECISION.EXT`, each with its sidecar
`.json`), `manifest.json` (what the apps read), `export.json` (what the artifacts were made from),
the reports, the golden vectors and the tokenizer files.

Reading (`ExportFolder.open`): parity, bench and golden vectors open a folder only through it. It
validates manifest.json (schema and version, every listed file present with its sha256 and size),
every artifact's sidecar, the tokenizer and golden files it names, and export.json, and refuses,
by name, anything missing, extra, unreadable or changed, with what to do about it.

Writing (`writing`): an export runs in a staging folder beside OUT that starts as a copy of OUT
(large artifact files hard-linked, not copied); the converters, parity, benchmarks and the manifest
all write there, and only a complete result replaces OUT, by two renames with signals held off.
So Ctrl-C, SIGTERM, a failing step or a full disk leave OUT as it was. An exclusive lock beside OUT
makes a second run into the same folder fail at once; staging folders left by a killed run
(`.OUT.staging-*`) are removed by the next run, which holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RECORD = "export.json"
REEXPORT = "re-export it with `mobile-sdk export --out {folder}`"


class FolderError(DataError):
    """An export folder is missing, incomplete, changed or written by an incompatible version."""


class FolderBusy(FolderError):
    """Another mobile-sdk run holds the folder's lock."""


def _fix(folder: Path) -> str:
    return REEXPORT.format(folder=folder)


def _load_json(path: Path, what: str, folder: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FolderError(f"{what} {path} is missing; {_fix(folder)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FolderError(f"{what} {path} cannot be read ({e.strerror if isinstance(e, OSError) else e}); "
                          f"check its permissions, or {_fix(folder)}") from None
    except ValueError as e:
        raise FolderError(f"{what} {path} is not valid JSON ({e}): it was cut short or edited; {_fix(folder)}") \
            from None


def read_record(folder: Path) -> dict:
    """OUT/export.json (the model source, weights, calibration folder and evaluation data of the
    export), checked; {} when the folder has none."""
    folder = Path(folder)
    path = folder / RECORD
    if not path.exists():
        return {}
    d = _load_json(path, "export record", folder)
    if not isinstance(d, dict):
        raise FolderError(f"export record {path} is not a JSON object; {_fix(folder)}")
    for key, types in (("model", (str, type(None))), ("checkpoint", (str, type(None))),
                       ("calibration", (str, type(None))), ("calibration_n", (int, type(None))),
                       ("eval_data", (dict, type(None)))):
        if not isinstance(d.get(key), types):
            raise FolderError(f"export record {path}: {key!r} is {d.get(key)!r}, expected "
                              f"{' or '.join(t.__name__ for t in types)}; {_fix(folder)}")
    return d


def scan_artifacts(folder: Path, strict: bool = True) -> list[dict]:
    """The sidecar metadata of each artifact under `folder`'s platform folders, with `file` resolved
    beside it: what the writer lists in the manifest. `strict`: a sidecar that cannot be read, or
    whose artifact is missing, is a FolderError naming it (else it is left out)."""
    from converters import SUFFIXES

    out = []
    for plat, suffix in SUFFIXES.items():
        for meta_path in sorted((Path(folder) / plat).glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
                ok = isinstance(meta, dict) and meta.get("platform") == plat and meta.get("tower") in ("image", "text") \
                    and isinstance(meta.get("precision"), str)
            except (OSError, ValueError) as e:
                ok, meta = False, str(e)
            f = meta_path.with_suffix(suffix)
            if not ok or not f.exists():
                if strict:
                    why = "its artifact " + f.name + " is missing" if ok else f"it is not an artifact sidecar ({meta})" \
                        if isinstance(meta, str) else "it is not an artifact sidecar of this platform"
                    raise FolderError(f"{meta_path}: {why}; remove it or {_fix(folder)}")
                continue
            meta["file"] = f
            out.append(meta)
    return out


@dataclass
class ExportFolder:
    """A validated export folder: `manifest` (the dict), `record` (export.json) and `artifacts`
    (each artifact's sidecar metadata with `file`, its path, and `entry`, its manifest entry)."""
    path: Path
    manifest: dict
    record: dict
    artifacts: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> ExportFolder:
        from . import __version__
        from .manifest import SCHEMA, SCHEMA_VERSION, _bytes, validate_manifest

        folder = Path(path)
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "not found"
            raise FolderError(f"export folder {folder} {what}; create it with `mobile-sdk export --out {folder}`")
        mpath = folder / MANIFEST
        if not mpath.exists():
            if (folder / RECORD).exists() or scan_artifacts(folder, strict=False):
                raise FolderError(f"{folder} has artifacts but no {MANIFEST}: an export that was cut short, or one "
                                  f"written by a mobile-sdk older than 0.1.0; {_fix(folder)}")
            raise FolderError(f"{folder} is not an export folder (no {MANIFEST}); create one with "
                              f"`mobile-sdk export --out {folder}`")
        d = _load_json(mpath, "manifest", folder)
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise FolderError(f"{mpath} is not a mobile-sdk manifest (its \"schema\" is not {SCHEMA!r}); "
                              f"{_fix(folder)}")
        version, wrote = d.get("schema_version"), d.get("sdk_version", "an unknown version")
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            fix = (f"upgrade: pip install -U mobile-sdk (or {_fix(folder)} with this version)" if newer
                   else _fix(folder) + f" with this version, or read it with mobile-sdk {wrote}")
            raise FolderError(f"{folder} was written by mobile-sdk {wrote} (manifest schema {version}); this is "
                              f"mobile-sdk {__version__}, which reads schema {SCHEMA_VERSION}: {fix}")
        try:
            validate_manifest(d, folder)
        except FolderError:
            raise
        except DataError as e:
            raise FolderError(f"{folder}: {e}") from None
        listed = {}
        for i, a in enumerate(d["artifacts"]):
            f = folder / a["file"]
            size = _bytes(f)
            if size != a["bytes"]:
                raise FolderError(f"{f} has {size} bytes, manifest.json lists {a['bytes']}: it changed after the "
                                  f"export; restore it or {_fix(folder)}")
            listed[f.resolve()] = a
        sidecars = {}
        for key, a in listed.items():
            f = folder / a["file"]  # as the caller named the folder (relative stays relative)
            meta_path = f.with_suffix(".json")
            meta = _load_json(meta_path, "artifact sidecar", folder)
            if not isinstance(meta, dict) or any(meta.get(k) != a[k] for k in ("platform", "tower", "precision")):
                raise FolderError(f"artifact sidecar {meta_path} does not describe {a['file']} (platform, tower and "
                                  f"precision must match manifest.json); {_fix(folder)}")
            meta["file"], meta["entry"] = f, a
            sidecars[key] = meta
        extra = _unlisted(folder, set(listed), sidecars.values())
        if extra:
            raise FolderError(f"{folder} holds {len(extra)} file(s) manifest.json does not list: "
                              + ", ".join(str(p.relative_to(folder)) for p in extra[:5])
                              + (" ..." if len(extra) > 5 else "") + f"; remove them or {_fix(folder)}")
        for key in ("vocab_file", "merges_file", "tokenizer_file"):
            name = d["model"]["tokenizer"].get(key)
            if name and not (folder / name).exists():
                raise FolderError(f"{folder / name} (the tokenizer file manifest.json names) is missing; "
                                  f"{_fix(folder)}")
        if d.get("golden"):
            g = _load_json(folder / d["golden"], "golden vectors", folder)
            if not isinstance(g, dict):
                raise FolderError(f"golden vectors {folder / d['golden']} are not a JSON object; {_fix(folder)}")
        record = read_record(folder)
        return cls(folder, d, record, [sidecars[f] for f in listed])

    def describe(self) -> str:
        return f"{self.path} ({len(self.artifacts)} artifacts, mobile-sdk {self.manifest.get('sdk_version')})"


def _unlisted(folder: Path, listed: set[Path], sidecars) -> list[Path]:
    """Files in the platform folders that belong to no listed artifact (hidden files aside)."""
    from converters import SUFFIXES

    known = set(listed) | {f.with_suffix(".json") for f in listed}
    for meta in sidecars:  # files an artifact's metadata names: its debug twin, its converter's log
        extra = meta.get("extra") if isinstance(meta.get("extra"), dict) else {}
        twin = extra.get("debug_twin")
        for ref in (twin.get("file") if isinstance(twin, dict) else None, extra.get("log")):
            if isinstance(ref, str):  # relative to the sidecar (older exports wrote absolute paths)
                known.add((Path(meta["file"]).parent / (Path(ref).name if Path(ref).is_absolute() else ref)).resolve())
    extra = []
    for plat in SUFFIXES:
        base = folder / plat
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base).parts
            if any(part.startswith(".") for part in rel) or any(part.endswith(".mlpackage") for part in rel[:-1]):
                continue
            if p.is_dir() and not p.name.endswith(".mlpackage"):
                continue
            if p.resolve() not in known:
                extra.append(p)
    return extra


# ---------------------------------------------------------------------------------------------
# Writing: lock, staging, swap
# ---------------------------------------------------------------------------------------------

STAGING = ".{name}.staging-"
PREVIOUS = ".{name}.previous-"
LOCK = ".{name}.lock"


def _lock_path(out: Path) -> Path:
    return out.parent / LOCK.format(name=out.name)


@contextlib.contextmanager
def locked(out: str | Path, command: str = "mobile-sdk"):
    """Hold an exclusive lock on OUT (a `.OUT.lock` file beside it) for the duration; a second
    holder fails at once with FolderBusy naming the first. Also checks that OUT's parent can be
    written, before any work starts."""
    import fcntl

    out = Path(out).absolute()
    _check_writable(out)
    path = _lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise FolderBusy(f"{out} is being written by another mobile-sdk run ({holder}); wait for it to "
                                 f"finish, or choose another --out") from None
            raise
        st = os.fstat(fd)
        try:
            same = os.stat(path).st_ino == st.st_ino  # the file was not replaced while we waited
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{command}, pid {os.getpid()}, since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _check_writable(out: Path) -> None:
    parent = out.parent
    if out.exists() and not out.is_dir():
        raise FolderError(f"--out {out} is a file; choose a folder")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise FolderError(f"--out {out}: {probe} is a file, so the folder cannot be created; choose another --out")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise FolderError(f"--out {out}: cannot write in {parent} ({e.strerror or e}); choose a folder you can write "
                          f"to, or fix its permissions") from None


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the staging folders a killed run left beside OUT (call with the lock held, so none
    belongs to a live run); if a killed run's final swap left OUT missing, put OUT back."""
    out = Path(out).absolute()
    removed = []
    previous = sorted(out.parent.glob(PREVIOUS.format(name=out.name) + "*"))
    if previous and not out.exists():  # killed between the two renames of the swap
        os.replace(previous[-1], out)
        log.warning("restored %s from %s, left by an interrupted run", out, previous[-1].name)
        previous = previous[:-1]
    for p in sorted(out.parent.glob(STAGING.format(name=out.name) + "*")) + previous:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    if removed:
        log.info("removed %d folder(s) left by an interrupted run beside %s: %s", len(removed), out,
                 ", ".join(p.name for p in removed))
    return removed


def _is_artifact_file(rel: Path) -> bool:
    from converters import SUFFIXES

    return bool(rel.parts) and rel.parts[0] in SUFFIXES and rel.suffix != ".json"


def _seed_staging(out: Path, stage: Path) -> None:
    """Start the staging folder as a copy of OUT: artifacts (which nothing rewrites in place; the
    converters replace files by rename) are hard-linked, everything else is copied."""
    if not out.is_dir():
        return

    def copy(src, dst):
        if _is_artifact_file(Path(src).relative_to(out)):
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    def ignore(src, names):  # temporaries of interrupted writers, and the lock
        return [n for n in names if n.startswith(".") and (n.endswith((".tmp", ".lock", ".old"))
                                                          or Path(src) != out)]

    shutil.copytree(out, stage, copy_function=copy, dirs_exist_ok=True, symlinks=True, ignore=ignore)


def _prune_unusable(stage: Path) -> None:
    """Carried-over artifacts that cannot be listed (a broken or orphaned sidecar, an artifact
    without one) are dropped with a warning, so a re-export repairs a damaged folder."""
    from converters import SUFFIXES

    good = {Path(m["file"]) for m in scan_artifacts(stage, strict=False)}
    for plat, suffix in SUFFIXES.items():
        base = stage / plat
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            if p.name.startswith(".") or p.is_dir() and not p.name.endswith(suffix):
                continue
            art = p.with_suffix(suffix) if p.suffix == ".json" else p
            if art not in good:
                log.warning("dropping %s/%s from the earlier export: it has no readable sidecar or artifact",
                            plat, p.name)
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def _swap_in(stage: Path, out: Path) -> None:
    from ._signals import held, raise_if_stopped

    raise_if_stopped()  # a signal whose exception Python dropped still stops the run here
    with held():
        previous = None
        if out.exists():
            previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=PREVIOUS.format(name=out.name)))
            os.replace(out, previous)
        os.replace(stage, out)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


class Staging:
    """What `writing` yields: `path` (where every step writes) and `out` (where it lands)."""

    def __init__(self, out: Path, path: Path):
        self.out, self.path = out, path

    def final(self, p: str | Path) -> Path:
        """A path under the staging folder -> the same path under OUT."""
        return self.out / Path(p).relative_to(self.path)


@contextlib.contextmanager
def writing(out: str | Path, command: str = "mobile-sdk export"):
    """Write an export folder as one transaction: lock OUT, clean what killed runs left, stage a
    copy of OUT, yield the `Staging`; when the block completes, the staging folder replaces OUT.
    On any exception (KeyboardInterrupt and SIGTERM included, see `_signals.stoppable`) the
    staging folder is removed and OUT is left as it was."""
    out = Path(out).absolute()
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists() and not (out / RECORD).exists():
        raise FolderError(f"--out {out} is a folder with other files in it and no {MANIFEST}: not an export "
                          f"folder; choose a new or empty folder (an export replaces its folder's contents)")
    with locked(out, command):
        remove_leftovers(out)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=STAGING.format(name=out.name)))
        try:
            _seed_staging(out, stage)
            _prune_unusable(stage)
            yield Staging(out, stage)
            _swap_in(stage, out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a small file whole or not at all (temp file beside it + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


__all__ = ["ExportFolder", "FolderBusy", "FolderError", "Staging", "atomic_write_text", "locked", "read_record",
           "remove_leftovers", "scan_artifacts", "writing"]
