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


def test_the_readmes_python_examples_name_catalogues_that_exist_outside_a_checkout(
        tmp_path, monkeypatch):
    """A new-user check: README's Python example, pasted outside a checkout, failed on
    fit(catalogue="catalogue/demo.yaml") (No such file): a repository path. Its catalogues are
    the shipped ones (hubensemble.shipped_catalogue), found from any folder; a repository
    path of a shipped catalogue, missing here, names the file to pass instead."""
    import pytest

    import hubensemble
    from hubensemble.catalogue import load_catalogues
    from hubensemble.errors import CatalogueError
    from hubensemble.text import shell

    text = (ROOT / "README.md").read_text()
    python = "".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert "catalogue=" in python and 'catalogue="' not in python, python
    monkeypatch.chdir(tmp_path)  # not a checkout
    for name in re.findall(r'shipped_catalogue\("([^"]+)"\)', python):
        assert load_catalogues([hubensemble.shipped_catalogue(name)])
    with pytest.raises(CatalogueError) as missing:
        load_catalogues(["catalogue/demo.yaml"])
    shipped = hubensemble.shipped_catalogue("demo.yaml")
    assert str(missing.value).endswith(
        f"; the package ships demo.yaml: --catalogue {shell(shipped)}, from Python "
        "hubensemble.shipped_catalogue('demo.yaml')"), missing.value
