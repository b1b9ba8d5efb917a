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


#: The record rules each version writes by (docs/reliability.md, "Versions"): a change of one
#: of them is a change a later version must read otherwise, so it comes with a new version
#: (the minor number) and a row here. 0.1.0 was every commit's version up to 2026-12-05, under
#: every rule: records could not name the one that wrote them.
RULES_OF_VERSION = {
    "0.2.0": {"cost.COST_FORMAT_VERSION": 1, "cost.COUNT_VERSION": 2,
              "rank.embeddings.CACHE_FORMAT": 2, "rank.located.MEMO_FORMAT": 2,
              "formats.EXPORT_FORMAT_VERSION": 1, "zoo.config.RECIPE_VERSION": 1},
}


def test_a_changed_record_rule_comes_with_a_new_version():
    """`hubensemble --version` said 0.1.0 at every commit, so run.json's, the export's and the
    caches' "versions" named no writer. setup.cfg reads the version from
    hubensemble.__version__ (one place); a record rule changed without a new version there
    fails here, naming both."""
    import hubensemble
    from hubensemble import formats
    from hubensemble.cost import records
    from hubensemble.rank import embeddings, located
    from hubensemble.zoo import config

    config_file = configparser.ConfigParser()
    config_file.read(ROOT / "setup.cfg")
    assert config_file["metadata"]["version"] == "attr: hubensemble.__version__"
    now = {"cost.COST_FORMAT_VERSION": records.COST_FORMAT_VERSION,
           "cost.COUNT_VERSION": records.COUNT_VERSION,
           "rank.embeddings.CACHE_FORMAT": embeddings.CACHE_FORMAT,
           "rank.located.MEMO_FORMAT": located.MEMO_FORMAT,
           "formats.EXPORT_FORMAT_VERSION": formats.EXPORT_FORMAT_VERSION,
           "zoo.config.RECIPE_VERSION": config.RECIPE_VERSION}
    assert hubensemble.__version__ in RULES_OF_VERSION, (
        f"version {hubensemble.__version__} has no row in RULES_OF_VERSION")
    assert RULES_OF_VERSION[hubensemble.__version__] == now, (
        f"a record rule changed under version {hubensemble.__version__}: bump "
        "hubensemble.__version__ (docs/reliability.md, Versions) and add its row")
    assert formats.versions()["hubensemble"] == hubensemble.__version__
