"""pytest wrapper of ios_demo/check.py: the iOS demo's CI check on a machine without Swift.

Wire it into `make test` by adding "ios_demo" to [tool.pytest.ini_options] testpaths (or run
`.venv/bin/python -m pytest ios_demo/test_ios_demo_check.py`). The syntax test skips, with the reason,
where tree-sitter / tree-sitter-swift are not installed.
"""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("ios_demo_check", Path(__file__).with_name("check.py"))
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def test_swift_sources_parse():
    problems, skipped = check.check_syntax()
    if skipped:
        pytest.skip(skipped)
    assert not problems, "Swift syntax errors:\n" + "\n".join(problems)


def test_golden_files_match_manifest():
    problems = check.check_golden()
    assert not problems, "\n".join(problems)


def test_swift_reads_the_manifest_fields():
    problems = check.check_fields()
    assert not problems, "\n".join(problems)
