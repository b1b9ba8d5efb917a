"""The wheel holds every sub-package: setup.cfg's package list against the source folders."""

import configparser
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {p.strip() for p in config["options"]["packages"].split() if p.strip()}


def _mapped_packages():
    """setup.cfg's package_dir: {package: its folder in the repository} (catalogue/, docs/)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pairs = [line.split("=") for line in config["options"]["package_dir"].splitlines()
             if "=" in line]
    return {name.strip(): folder.strip() for name, folder in pairs}


def test_every_package_folder_is_listed_in_setup_cfg():
    # An editable install finds every folder; `pip install .` ships only what is listed, so a
    # new sub-package missing here breaks the README's first command and nothing else.
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "hubensemble").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    mapped = _mapped_packages()
    found |= {name for name, folder in mapped.items() if (ROOT / folder / "__init__.py").is_file()}
    listed = _listed_packages()
    assert found - listed == set(), f"sub-packages missing from setup.cfg: {found - listed}"
    assert listed - found == set(), f"setup.cfg lists packages that do not exist: {listed - found}"
    assert {"hubensemble.catalogues", "hubensemble.docs"} <= set(mapped)


def _built(tmp_path):
    """The wheel `pip install .` installs, built offline (`pip wheel --no-deps
    --no-build-isolation`: this environment's setuptools) from a copy of the repository's
    files, so the checkout gets no build/ or egg-info; then installed as pip lays out a pure
    Python wheel, its files unpacked into tmp_path/lib. Returns that folder. A few seconds."""
    import shutil
    import subprocess
    import zipfile

    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("hubensemble", *_mapped_packages().values()):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "--no-index", "-w", str(wheels),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("hubensemble-*.whl")
    lib = tmp_path / "lib"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(lib)
    return lib


def test_the_docs_errors_cite_ship_in_the_wheel_and_the_installed_command_prints_them(
        tmp_path):
    """About 55 modules' errors and warnings cite docs/NAME.md (#anchor), a folder of the
    repository that `pip install .` left out: after the README's first command the user was
    sent to a file they did not have. Every docs/*.md is in the built package (as
    hubensemble/docs/, package data `hubensemble.docs`), and `hubensemble docs` run from that
    install alone (PYTHONPATH: the built folder, run from another folder; no checkout)
    finds them there, prints the section a message cites, and names that file."""
    import subprocess

    lib = _built(tmp_path)
    shipped = sorted(p.name for p in (lib / "hubensemble" / "docs").glob("*.md")) \
        if (lib / "hubensemble" / "docs").is_dir() else []
    assert shipped == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(lib)}

    def hubensemble(*args):
        done = subprocess.run([sys.executable, "-m", "hubensemble", *args], cwd=away, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    installed = lib / "hubensemble" / "docs" / "data.md"
    assert hubensemble("docs", "--path", "data#labels-in-a-table").strip() == str(installed)
    lines = installed.read_text(encoding="utf-8").splitlines()
    start = lines.index("### Labels in a table")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### ")))
    assert hubensemble("docs", "data#labels-in-a-table").splitlines() == \
        "\n".join(lines[start:end]).rstrip().splitlines()
    listed = hubensemble("docs")
    assert str(installed.parent) in listed
    assert all(f" {name[:-3]} " in listed for name in shipped), listed


#: The record rules each version writes by (docs/reliability.md, "Versions"): a change of one
#: of them is a change a later version must read otherwise, so it comes with a new version
#: (the minor number) and a row here. 0.1.0 was every commit's version up to 2026-12-05, under
#: every rule: records could not name the one that wrote them.
RULES_OF_VERSION = {
    "0.2.0": {"cost.COST_FORMAT_VERSION": 1, "cost.COUNT_VERSION": 2,
              "rank.embeddings.CACHE_FORMAT": 2, "rank.located.MEMO_FORMAT": 2,
              "formats.EXPORT_FORMAT_VERSION": 1, "zoo.config.RECIPE_VERSION": 1},
    # trial.json records its training rule (sweepstate.TRAIN_RULE; none = rule 1).
    "0.3.0": {"cost.COST_FORMAT_VERSION": 1, "cost.COUNT_VERSION": 2,
              "rank.embeddings.CACHE_FORMAT": 2, "rank.located.MEMO_FORMAT": 2,
              "formats.EXPORT_FORMAT_VERSION": 1, "zoo.config.RECIPE_VERSION": 1,
              "sweepstate.TRAIN_RULE": 2},
}


def test_a_changed_record_rule_comes_with_a_new_version():
    """`hubensemble --version` said 0.1.0 at every commit, so run.json's, the export's and the
    caches' "versions" named no writer. setup.cfg reads the version from
    hubensemble.__version__ (one place); a record rule changed without a new version there
    fails here, naming both."""
    import hubensemble
    from hubensemble import formats, sweepstate
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
           "zoo.config.RECIPE_VERSION": config.RECIPE_VERSION,
           "sweepstate.TRAIN_RULE": sweepstate.TRAIN_RULE}
    assert hubensemble.__version__ in RULES_OF_VERSION, (
        f"version {hubensemble.__version__} has no row in RULES_OF_VERSION")
    assert RULES_OF_VERSION[hubensemble.__version__] == now, (
        f"a record rule changed under version {hubensemble.__version__}: bump "
        "hubensemble.__version__ (docs/reliability.md, Versions) and add its row")
    assert formats.versions()["hubensemble"] == hubensemble.__version__


def test_type_checkers_see_the_lazy_api_and_the_package_says_it_is_typed():
    """`import hubensemble` loads its API on first use (`__getattr__`), which type checkers
    do not run: mypy said "missing library stubs or py.typed marker" and took
    `hubensemble.fit(...)` as Any. The `if TYPE_CHECKING:` imports must name exactly `_API`
    (a name added to one and not the other is caught here), and py.typed ships (PEP 561)."""
    import ast

    import hubensemble

    tree = ast.parse((ROOT / "hubensemble" / "__init__.py").read_text(encoding="utf-8"))
    checked = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
                checked.update({a.asname or a.name: statement.module for a in statement.names})
    assert checked == hubensemble._API
    assert (ROOT / "hubensemble" / "py.typed").is_file()
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "py.typed" in config["options.package_data"]["hubensemble"].split()


def test_a_fit_results_records_are_typed_for_type_checkers():
    """FitResult.ranking was annotated `object`, so mypy refused `result.ranking.summary()`
    ('"object" has no attribute "summary"') on fit's own result. Every field names its record's
    type as a type checker resolves it (the `if TYPE_CHECKING:` import of pipeline.py)."""
    import typing

    from hubensemble.pipeline import FitResult
    from hubensemble.rank.ranking import Ranking

    hints = typing.get_type_hints(FitResult, localns={"Ranking": Ranking})
    assert hints["ranking"] is Ranking
    assert object not in hints.values(), hints


def test_the_stage_decorators_keep_the_signature_for_type_checkers():
    """The decorators of the public functions (progress, the run lock, rank's run defaults,
    Keras' settings) were unannotated, so a type checker saw `run_rank`, `run_tune` and
    `export_ensemble` as `def (*Any, **Any) -> Any`. Every decorator on a function of the API
    (read from its source, so a new one is checked too) declares it returns the callable it
    was given (ParamSpec, PEP 612), and every such function has a return annotation."""
    import ast
    import importlib
    import inspect
    import typing

    import hubensemble

    def keeps(decorator, made=False):
        hints = typing.get_type_hints(decorator)["return"]
        if made:  # a decorator factory: returns Callable[[Callable[P, R]], Callable[P, R]]
            (given,), hints = typing.get_args(hints)
        else:
            given = next(v for k, v in typing.get_type_hints(decorator).items() if k != "return")
        return hints == given and isinstance(typing.get_args(given)[0], typing.ParamSpec)

    seen, unannotated = set(), []
    for name, module_name in hubensemble._API.items():
        value = getattr(hubensemble, name)
        if not inspect.isfunction(value):
            continue
        if inspect.signature(value).return_annotation is inspect.Signature.empty:
            unannotated.append(name)
        inner = inspect.unwrap(value)
        module = importlib.import_module(inner.__module__)
        tree = ast.parse(inspect.getsource(module))
        node = next(n for n in tree.body
                    if isinstance(n, ast.FunctionDef) and n.name == inner.__name__)
        for expression in node.decorator_list:
            made = isinstance(expression, ast.Call)
            decorator = getattr(module, ast.unparse(expression.func if made else expression))
            seen.add(decorator.__name__)
            assert keeps(decorator, made), (name, decorator.__name__)
    assert unannotated == []
    assert {"shows_progress", "writes_run", "keeps_run_defaults",
            "with_stage_settings"} <= seen


def _fake_distribution(site, name, version, files):
    """A .dist-info folder in `site` for distribution `name` whose RECORD lists `files`
    ({path in site: bytes, with the hash RECORD gives}); a real installed distribution to
    importlib.metadata, of a tiny package, not TensorFlow."""
    import base64
    import hashlib

    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")

    def record_hash(data):  # RECORD's form: urlsafe base64 without padding
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    rows = [f"{path},sha256={record_hash(data)},{len(data)}" for path, data in files.items()]
    (info / "RECORD").write_text("\n".join([*rows, f"{info.name}/RECORD,,", ""]))


def test_versions_record_the_release_imported_and_the_distribution_it_came_from(
        tmp_path, monkeypatch):
    """run.json and the export's "versions" read the metadata of the distribution named
    like the library: "not installed" for a tensorflow from tensorflow-cpu (or tf-nightly,
    tensorflow-macos), and keras' release when keras-nightly's files were the ones in keras/
    (both list them; the last installed wrote them). Here with tiny real distributions: a
    module from a differently named one, and a folder two list, with the files of the one
    installed last ("fakeras-nightly"), then of the other."""
    from hubensemble import formats, installed

    site = tmp_path / "site"
    (site / "fakeras").mkdir(parents=True)
    (site / "faketf").mkdir()
    init = b'__version__ = "9.1.0"\n'
    stable, nightly = b'V = "3.15.1"\n', b'V = "3.16.0.dev1"\n'
    _fake_distribution(site, "fakeras", "3.15.1",
                       {"fakeras/__init__.py": init, "fakeras/v.py": stable})
    _fake_distribution(site, "fakeras-nightly", "3.16.0.dev1",
                       {"fakeras/__init__.py": init, "fakeras/v.py": nightly})
    _fake_distribution(site, "faketf-cpu", "2.22.0rc0", {"faketf/__init__.py": b""})
    (site / "fakeras" / "__init__.py").write_bytes(init)
    (site / "fakeras" / "v.py").write_bytes(nightly)
    (site / "faketf" / "__init__.py").write_bytes(b'__version__ = "2.22.0-rc0"\n')
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(formats, "VERSIONED", ("faketf", "fakeras", "fakemissing"))

    def recorded():
        installed._packages.cache_clear()  # read once per process: here sys.path grew
        installed._owner.cache_clear()
        return {k: v for k, v in formats.versions().items() if k.startswith("fake")}

    assert recorded() == {"faketf": "2.22.0rc0", "faketf_distribution": "faketf-cpu",
                          "fakeras": "3.16.0.dev1", "fakeras_distribution": "fakeras-nightly",
                          "fakemissing": "not installed"}
    (site / "fakeras" / "v.py").write_bytes(stable)  # keras installed again, after
    assert recorded()["fakeras"] == "3.15.1" and "fakeras_distribution" not in recorded()
    # Imported: the module's own version when its distribution's metadata says another
    # (here a file edited in place); one spelling of one release ("2.22.0-rc0") is not.
    try:
        import fakeras  # noqa: F401
        import faketf  # noqa: F401

        assert recorded()["fakeras"] == "9.1.0" and recorded()["faketf"] == "2.22.0rc0"
    finally:
        sys.modules.pop("fakeras", None)
        sys.modules.pop("faketf", None)
