"""Every command's ``--help`` shows example lines, and each runs as written where ``ccr demo`` wrote
ccr-demo/ (a copy of the session's demo, tests/conftest.py's ``toy_demo``, which is itself ``ccr demo``'s
example run as written)."""

import shutil

import pytest
from cli_examples import commands, examples, run, working_dir

COMMANDS = commands()


def test_every_command_has_examples_and_the_version_prints():
    missing = [" ".join(c) for c in COMMANDS if not examples(c)]
    assert not missing, f"commands without examples in --help: {missing}"
    assert len(COMMANDS) >= 20
    from ccr import __version__

    assert run("ccr --version").output.strip() == f"ccr {__version__}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ("demo",)], ids=" ".join)
def test_the_examples_run_as_written(command, toy_demo, tmp_path):
    shutil.copytree(toy_demo[0], tmp_path / "ccr-demo", symlinks=True)
    with working_dir(tmp_path):
        for line in examples(command):
            result = run(line)
            if command == ("push",):  # the only example that needs the network; the suite runs offline
                assert result.exit_code == 2 and "the Hugging Face Hub cannot be reached" in result.output, line
            else:
                assert result.exit_code == 0, f"{line}\n{result.output}"
