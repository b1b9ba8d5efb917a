"""The wheel holds every sub-package: setup.cfg's package list against the source folders."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {p.strip() for p in config["options"]["packages"].split() if p.strip()}


def test_every_package_folder_is_listed_in_setup_cfg():
    # An editable install finds every folder; `pip install .` ships only what is listed, so a
    # new sub-package missing here breaks the README's first command and nothing else.
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "hubensemble").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = _listed_packages()
    assert found - listed == set(), f"sub-packages missing from setup.cfg: {found - listed}"
    assert listed - found - {"hubensemble.catalogues"} == set(), \
        f"setup.cfg lists packages that do not exist: {listed - found}"
