"""The README's set-up commands are the ones CI runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = [c for c in readme_commands() if "pytest" in c]
    assert len(test_command) == 1
    assert test_command[0] in ci


def test_readme_starts_with_the_set_up_commands():
    text = (ROOT / "README.md").read_text()
    assert text.index("```sh") < text.index("\n## ")
