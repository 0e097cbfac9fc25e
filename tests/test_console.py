"""The command line's manners: --version, `python -m mobile_sdk`, global options after the
subcommand, the backends' own output kept off the terminal, and progress lines."""

import subprocess
import sys
import textwrap

from click.testing import CliRunner

import mobile_sdk
from mobile_sdk.cli import main


def test_version_from_the_command_and_from_python_m(tmp_path):
    for cmd in ([sys.executable, "-m", "mobile_sdk", "--version"],):
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"mobile-sdk {mobile_sdk.__version__}")
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and mobile_sdk.__version__ in r.output


def test_global_options_are_accepted_after_the_subcommand():
    runner = CliRunner()
    for args in (["models", "-v"], ["models", "-vv"], ["models", "-q"], ["-v", "models"], ["models", "--verbose"]):
        r = runner.invoke(main, args)
        assert r.exit_code == 0, (args, r.output)
        assert "student" in r.output
    r = runner.invoke(main, ["models", "-x"])
    assert r.exit_code == 2 and "No such option" in r.output


_SCRIPT = textwrap.dedent("""
    import logging, os, sys
    from mobile_sdk import _console, _logging
    _logging.configure(int(sys.argv[1]), sys.argv[2] or None)
    with _console.quiet_backends(), _console.Progress(_console.STATE.verbosity) as p:
        os.write(2, b"[threadpool.cpp:66] native chatter on stderr\\n")
        os.write(1, b"native chatter on stdout\\n")
        print("a dependency's print")
        logging.getLogger("mobile_sdk.x").warning("our own warning")
        step = p.stage("convert")
        step("tflite image int8", 0, 2)
        step("tflite text int8", 1, 2)
    print("after the work")
""")


def _run(tmp_path, verbosity, log_file=""):
    script = tmp_path / "s.py"
    script.write_text(_SCRIPT)
    return subprocess.run([sys.executable, str(script), str(verbosity), log_file], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_backends_output_stays_off_the_terminal_and_ours_stays_on(tmp_path):
    r = _run(tmp_path, 0)
    assert r.returncode == 0, r.stderr
    both = r.stdout + r.stderr
    assert "native chatter" not in both and "a dependency's print" not in both
    assert "our own warning" in r.stderr
    assert "convert" in r.stderr and "tflite text int8 (2/2)" in r.stderr  # not a terminal: one line per step
    assert r.stdout.strip() == "after the work"
    assert not list(tmp_path.glob("mobile-sdk-backends-*"))


def test_log_file_gets_the_backends_output_and_vv_shows_it(tmp_path):
    log = tmp_path / "logs" / "run.log"
    r = _run(tmp_path, 0, str(log))
    assert r.returncode == 0, r.stderr
    assert "native chatter" not in r.stdout + r.stderr
    text = log.read_text()
    assert "[threadpool.cpp:66] native chatter on stderr" in text and "our own warning" in text
    r = _run(tmp_path, 2)
    assert "native chatter on stderr" in r.stderr and "native chatter on stdout" in r.stdout


def test_quiet_shows_no_progress(tmp_path):
    r = _run(tmp_path, -1)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "" and r.stdout.strip() == "after the work"
