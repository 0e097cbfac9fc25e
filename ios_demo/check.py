#!/usr/bin/env python3
"""CI check of the iOS demo that runs without a Swift toolchain (Linux CI has none).

1. syntax: every .swift file under ios_demo/ parses with the tree-sitter Swift grammar, with no
   ERROR or MISSING node (printed as file:line:col). Needs `tree-sitter` and `tree-sitter-swift`
   (dev dependencies); without them this part is skipped with a message, the others still run.
2. golden: for each golden folder the XCTests replay (tests/golden: the shipped model, word
   tokenizer; tests/golden_bpe: a CLIP BPE model), every file they read exists (the test's relative
   path resolves to the folder) and agrees with its manifest.json: the manifest validates with
   mobile_sdk.manifest and has the schema / version the Swift code reads, the tokenizer's file
   (vocab.txt, or the BPE merges file) has the manifest's sha256 (and vocab.txt its size), each
   sample PNG has golden.json's png_sha256, each pixel list its pixels_sha256 and
   image_size^2 * 3 bytes; the prompts are the manifest's. tests/golden has a Core ML pair. Where
   the manifest has a label bank (tests/golden_bpe), its file has the manifest's sha256, schema,
   class count and embed_dim, and golden.json has its label_bank block for every results block.
3. fields: every JSON key the Swift Codable types declare (CodingKeys) exists in a golden folder's
   manifest.json / golden.json, and every manifest field the app needs is declared and read in the
   Swift sources.

Usage: .venv/bin/python ios_demo/check.py   (exit 0: all passed or skipped; 1: problems listed)
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN = REPO / "tests" / "golden"
GOLDEN_BPE = REPO / "tests" / "golden_bpe"
# GoldenFiles.swift constant -> the folder it must resolve to
GOLDEN_FOLDERS = {"goldenRelativePath": GOLDEN, "bpeGoldenRelativePath": GOLDEN_BPE}
TESTS = HERE / "Tests" / "MobileSDKCoreTests"
CORE = HERE / "Sources" / "MobileSDKCore"
SKIP_DIRS = {".build", ".tools", ".swiftpm", "DerivedData", "build"}

# Manifest fields the app reads (JSON path -> why); each must be a CodingKeys raw value in
# Manifest.swift whose Swift property is read somewhere (`.property`).
NEEDED = {
    "schema": "refuse other files", "schema_version": "refuse unknown versions",
    "embed_dim": "check the output size", "logit_scale": "scores",
    "image_size": "preprocessing", "resize": "refuse a resize rule the app lacks",
    "kind": "pick the tokenizer", "merges_file": "find the BPE merges", "merges_sha256": "check the BPE merges",
    "vocab_file": "find vocab.txt", "vocab_sha256": "check vocab.txt",
    "vocab_size": "check vocab.txt", "context_length": "token ids length",
    "pad_id": "tokenizer", "sot_id": "tokenizer", "eot_id": "tokenizer", "unk_id": "tokenizer",
    "tasks": "default labels", "labels": "default labels", "prompts": "default prompts",
    "artifacts": "model files", "platform": "pick Core ML", "tower": "image / text",
    "precision": "pick the palettized pair", "file": "find the model", "sha256": "check model files",
    "inputs": "input name / shape / dtype", "outputs": "output name", "name": "tensor names",
    "shape": "tensor shapes", "dtype": "tensor dtypes", "golden": "golden vectors",
    "label_bank": "zero-shot with the image tower alone",
}


def swift_files() -> list[Path]:
    return sorted(p for p in HERE.rglob("*.swift") if not SKIP_DIRS.intersection(p.relative_to(HERE).parts))


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- 1. syntax

def swift_parser():
    """(parser, None) or (None, why it is unavailable)."""
    try:
        import tree_sitter
        import tree_sitter_swift
    except ImportError as e:
        return None, (f"tree-sitter Swift grammar not installed ({e.name}); "
                      "install the dev dependencies: pip install tree-sitter tree-sitter-swift")
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language())), None


def syntax_problems(parser, path: Path) -> list[str]:
    source = path.read_bytes()
    tree = parser.parse(source)
    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing or node.type == "ERROR":
            row, col = node.start_point
            kind = f"MISSING {node.type}" if node.is_missing else "ERROR"
            text = source[node.start_byte:node.end_byte].decode("utf-8", "replace").splitlines()
            snippet = (text[0] if text else "").strip()[:60]
            out.append(f"{rel(path)}:{row + 1}:{col + 1}: {kind} {snippet!r}")
            if node.type == "ERROR":
                continue
        if node.has_error:
            stack.extend(reversed(node.children))
    return out


def check_syntax() -> tuple[list[str], str | None]:
    parser, why = swift_parser()
    if parser is None:
        return [], why
    problems = []
    files = swift_files()
    if not files:
        problems.append(f"no .swift files under {rel(HERE)}")
    for f in files:
        problems += syntax_problems(parser, f)
    return problems, None


# ----------------------------------------------------------------------------- helpers on Swift text

def coding_keys(path: Path) -> dict[str, str]:
    """Swift property -> JSON key of every `enum CodingKeys` in a file."""
    text = path.read_text()
    keys = {}
    for m in re.finditer(r"enum\s+CodingKeys\s*:\s*String\s*,\s*CodingKey\s*\{(.*?)\}", text, re.S):
        for case in re.finditer(r"\bcase\s+([^\n]+)", m.group(1)):
            for item in case.group(1).split(","):
                km = re.match(r"\s*(\w+)\s*(?:=\s*\"([^\"]*)\")?\s*$", item)
                if km:
                    keys[km.group(1)] = km.group(2) or km.group(1)
    return keys


def string_constant(path: Path, name: str) -> str | None:
    m = re.search(rf"\bstatic\s+let\s+{name}\s*=\s*\"([^\"]*)\"", path.read_text())
    return m.group(1) if m else None


def int_constant(path: Path, name: str) -> int | None:
    m = re.search(rf"\bstatic\s+let\s+{name}\s*=\s*(\d+)", path.read_text())
    return int(m.group(1)) if m else None


def json_keys(obj, into: set[str] | None = None) -> set[str]:
    into = set() if into is None else into
    if isinstance(obj, dict):
        for k, v in obj.items():
            into.add(k)
            json_keys(v, into)
    elif isinstance(obj, list):
        for v in obj:
            json_keys(v, into)
    return into


# ----------------------------------------------------------------------------- 2. golden files

def check_golden() -> list[str]:
    problems: list[str] = []
    files_swift = TESTS / "GoldenFiles.swift"
    if not files_swift.exists():
        return [f"{rel(files_swift)} is missing"]
    for const, folder in GOLDEN_FOLDERS.items():
        relative = string_constant(files_swift, const)
        if relative is None:
            problems.append(f"{rel(files_swift)}: no {const}")
        elif (TESTS / relative).resolve() != folder.resolve():
            problems.append(f"{rel(files_swift)}: {const} {relative!r} resolves to {(TESTS / relative).resolve()}, "
                            f"not {folder}")
    names = {n: string_constant(files_swift, n) for n in ("manifestFile", "goldenFile")}
    for n, v in names.items():
        if v is None:
            problems.append(f"{rel(files_swift)}: no {n}")
    if problems:
        return problems
    try:
        from mobile_sdk.manifest import SCHEMA, SCHEMA_VERSION  # noqa: F401
    except ImportError as e:
        return [f"cannot import mobile_sdk ({e}); run with the project's .venv python"]
    for folder in GOLDEN_FOLDERS.values():
        problems += check_golden_folder(folder, names["manifestFile"], names["goldenFile"])
    return problems


def check_golden_folder(folder: Path, manifest_file: str, golden_file: str) -> list[str]:
    from mobile_sdk.manifest import SCHEMA, SCHEMA_VERSION, validate_manifest

    problems: list[str] = []
    if not folder.is_dir():
        return [f"{rel(folder)} is missing (the lead commits it; see its README.md)"]
    for v in (manifest_file, golden_file):
        if not (folder / v).is_file():
            problems.append(f"{rel(folder / v)} is missing")
    if problems:
        return problems

    manifest = json.loads((folder / manifest_file).read_text())
    try:
        validate_manifest(manifest)
    except Exception as e:  # DataError: say what is wrong and carry on with the other checks
        return [f"{rel(folder / manifest_file)} does not validate: {e}"]
    swift_schema = string_constant(CORE / "Manifest.swift", "schemaName")
    swift_version = int_constant(CORE / "Manifest.swift", "supportedSchemaVersion")
    if swift_schema != SCHEMA or manifest["schema"] != SCHEMA:
        problems.append(f"schema: Swift {swift_schema!r}, manifest {manifest['schema']!r}, Python {SCHEMA!r}")
    if swift_version != SCHEMA_VERSION or manifest["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema_version: Swift {swift_version}, manifest {manifest['schema_version']}, "
                        f"Python {SCHEMA_VERSION}")
    if manifest.get("golden") != golden_file:
        problems.append(f"{rel(folder)}: manifest golden is {manifest.get('golden')!r}, the tests read {golden_file!r}")
    tok = manifest["model"]["tokenizer"]
    kind = tok.get("kind", "word")
    if kind == "word":
        vocab = folder / tok["vocab_file"]
        if not vocab.is_file():
            problems.append(f"{rel(vocab)} (the manifest's vocab_file) is missing")
        else:
            if sha256(vocab) != tok.get("vocab_sha256"):
                problems.append(f"{rel(vocab)} sha256 {sha256(vocab)} != manifest vocab_sha256 {tok.get('vocab_sha256')}")
            if len(vocab.read_text(encoding="utf-8").splitlines()) != tok.get("vocab_size"):
                problems.append(f"{rel(vocab)} does not have the manifest's vocab_size {tok.get('vocab_size')} lines")
    elif kind == "clip_bpe":
        merges = folder / tok["merges_file"]
        if not merges.is_file():
            problems.append(f"{rel(merges)} (the manifest's merges_file) is missing")
        elif sha256(merges) != tok.get("merges_sha256"):
            problems.append(f"{rel(merges)} sha256 {sha256(merges)} != manifest merges_sha256 {tok.get('merges_sha256')}")
    else:
        problems.append(f"{rel(folder)}: tokenizer kind {kind!r}: the app implements word and clip_bpe")
    if folder == GOLDEN:
        coreml = {(a["tower"], a["precision"]) for a in manifest["artifacts"] if a["platform"] == "coreml"}
        pairs = {p for t, p in coreml if ("image", p) in coreml and ("text", p) in coreml}
        if not pairs:
            problems.append("the manifest lists no Core ML image + text pair: the app has nothing to run")

    golden = json.loads((folder / golden_file).read_text())
    size = manifest["model"]["preprocessing"]["image_size"]
    if golden.get("schema_version") != 1:
        problems.append(f"{rel(folder)}: golden.json schema_version {golden.get('schema_version')} (the tests read 1)")
    if golden.get("logit_scale") != manifest["model"]["logit_scale"]:
        problems.append(f"{rel(folder)}: golden.json logit_scale differs from the manifest's")
    modes = set()
    for img in golden.get("images", []):
        png = folder / img["file"]
        modes.add(img["mode"])
        if not png.is_file():
            problems.append(f"{rel(png)} (golden.json images) is missing")
            continue
        if sha256(png) != img["png_sha256"]:
            problems.append(f"{rel(png)} sha256 differs from golden.json png_sha256")
        if len(img["pixels"]) != size * size * 3:
            problems.append(f"{img['file']}: {len(img['pixels'])} pixel bytes, expected {size}*{size}*3")
        elif hashlib.sha256(bytes(img["pixels"])).hexdigest() != img["pixels_sha256"]:
            problems.append(f"{img['file']}: pixels do not match pixels_sha256")
    expected_modes = {"RGB", "RGBA", "L", "P", "I;16"}
    if modes != expected_modes:  # GoldenTests asserts this set
        problems.append(f"{rel(folder)}: golden.json image modes {sorted(modes)}, the tests expect "
                        f"{sorted(expected_modes)}")
    task = golden.get("prompts", {}).get("task")
    if task not in manifest["model"]["tasks"]:
        problems.append(f"{rel(folder)}: golden.json prompts task {task!r} is not a manifest task")
    elif golden["prompts"]["texts"] != manifest["model"]["tasks"][task]["prompts"]:
        problems.append(f"{rel(folder)}: golden.json prompts differ from the manifest's {task} prompts")
    if "eager" not in golden.get("results", {}):
        problems.append(f"{rel(folder)}: golden.json results lack 'eager'")
    problems += check_label_bank(folder, manifest, golden)
    for name, block in golden.get("results", {}).items():
        n_img, n_txt = len(golden["images"]), len(golden["texts"])
        if len(block["image_embeddings"]) != n_img or len(block["search_ranking"]) != n_txt:
            problems.append(f"{rel(folder)}: golden.json results[{name!r}] sizes do not match images / texts")
    return problems


def check_label_bank(folder: Path, manifest: dict, golden: dict) -> list[str]:
    """The label bank LabelBankTests / GoldenTests read, where the manifest has one."""
    entry, block = manifest.get("label_bank"), golden.get("label_bank")
    if entry is None:
        return [f"{rel(folder)}: golden.json has a label_bank block, the manifest no label bank"] if block else []
    path = folder / entry["file"]
    if not path.is_file():
        return [f"{rel(path)} (the manifest's label_bank file) is missing"]
    problems = []
    if sha256(path) != entry["sha256"]:
        problems.append(f"{rel(path)} sha256 {sha256(path)} != manifest label_bank.sha256 {entry['sha256']}")
    swift = CORE / "LabelBank.swift"
    bank = json.loads(path.read_text())
    if (bank.get("schema"), bank.get("schema_version")) != (string_constant(swift, "schemaName"),
                                                             int_constant(swift, "supportedSchemaVersion")):
        problems.append(f"{rel(path)}: schema {bank.get('schema')!r} version {bank.get('schema_version')}, the "
                        f"Swift code reads {string_constant(swift, 'schemaName')!r} "
                        f"{int_constant(swift, 'supportedSchemaVersion')}")
    dim = manifest["model"]["embed_dim"]
    if len(bank.get("classes", [])) != entry["classes"] or not bank.get("embed_dim") == entry["embed_dim"] == dim:
        problems.append(f"{rel(path)}: classes / embed_dim differ from the manifest's label_bank or embed_dim")
    if any(len(row) != dim for row in bank.get("embeddings", [])) or len(bank.get("embeddings", [])) != entry["classes"]:
        problems.append(f"{rel(path)}: embeddings are not one row of embed_dim values per class")
    if block is None:
        problems.append(f"{rel(folder)}: golden.json lacks the label_bank block (the manifest has a label bank)")
    elif (block.get("file"), block.get("sha256"), block.get("classes")) != (entry["file"], entry["sha256"],
                                                                              bank.get("classes")):
        problems.append(f"{rel(folder)}: golden.json label_bank block names another file, sha256 or classes")
    elif set(block.get("results", {})) != set(golden.get("results", {})):
        problems.append(f"{rel(folder)}: golden.json label_bank results differ from its results blocks")
    return problems


# ----------------------------------------------------------------------------- 3. fields

def check_fields() -> list[str]:
    problems: list[str] = []
    manifest_swift = CORE / "Manifest.swift"
    files_swift = TESTS / "GoldenFiles.swift"
    m_keys = coding_keys(manifest_swift)
    g_keys = coding_keys(files_swift) if files_swift.exists() else {}
    if not m_keys:
        return [f"{rel(manifest_swift)}: no CodingKeys found"]
    sources = "\n".join(p.read_text() for p in swift_files())
    by_json = {}
    for prop, key in m_keys.items():
        by_json.setdefault(key, set()).add(prop)
    for key, why in NEEDED.items():
        props = by_json.get(key)
        if not props:
            problems.append(f"{rel(manifest_swift)}: no CodingKeys case for manifest field {key!r} ({why})")
        elif not any(re.search(rf"\.{p}\b", sources) for p in props):
            problems.append(f"manifest field {key!r} ({why}) is declared but never read (.{sorted(props)[0]})")
    for file, keys, swift in (("manifest.json", m_keys, manifest_swift), ("golden.json", g_keys, files_swift)):
        paths = [f / file for f in GOLDEN_FOLDERS.values() if (f / file).is_file()]
        if not paths:
            continue
        have: set[str] = set()
        for path in paths:
            json_keys(json.loads(path.read_text()), have)
        for prop, key in sorted(keys.items()):
            if key not in have:
                problems.append(f"{rel(swift)}: CodingKeys.{prop} = {key!r} is not a key of "
                                f"{' or '.join(rel(p) for p in paths)}")
    try:
        from mobile_sdk.manifest import PLATFORMS, TOWERS
    except ImportError:
        return problems
    text = manifest_swift.read_text()
    for name, values in (("platforms", PLATFORMS), ("towers", TOWERS)):
        m = re.search(rf"static let {name} = \[([^\]]*)\]", text)
        got = tuple(re.findall(r"\"([^\"]*)\"", m.group(1))) if m else None
        if got != tuple(values):
            problems.append(f"{rel(manifest_swift)}: Manifest.{name} {got} != mobile_sdk.manifest {tuple(values)}")
    return problems


# ----------------------------------------------------------------------------- main

def run() -> dict[str, tuple[list[str], str | None]]:
    """Each check's (problems, skip reason or None)."""
    return {"syntax": check_syntax(), "golden": (check_golden(), None), "fields": (check_fields(), None)}


def main() -> int:
    results = run()
    failed = 0
    for name, (problems, skipped) in results.items():
        if skipped:
            print(f"SKIP {name}: {skipped}")
        elif problems:
            failed += 1
            print(f"FAIL {name}:")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"ok   {name}")
    n_files = len(swift_files())
    passed = sum(1 for p, s in results.values() if not p and not s)
    skipped = sum(1 for _, s in results.values() if s)
    print(f"ios_demo check ({n_files} Swift files): {passed} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
