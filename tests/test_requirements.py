"""setup.cfg's lower bounds are releases someone ran: python_requires against the standard
library names the code uses, install_requires against README's list of the oldest releases
the suite was run on."""

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Standard-library names newer than 3.10, by the version that brought them: (module, None)
#: is the module itself, (module, name) one of its attributes (a method by (None, name)).
#: A name read only behind hasattr(X, "name") / getattr(X, "name", default) is a feature
#: check, allowed. Python's "What's New" pages, 3.11 to 3.14.
NEWER_NAMES = {
    (3, 11): {("tomllib", None), ("wsgiref.types", None), ("typing", "Self"),
              ("typing", "LiteralString"), ("typing", "Never"), ("typing", "assert_never"),
              ("typing", "assert_type"), ("typing", "reveal_type"), ("typing", "Required"),
              ("typing", "NotRequired"), ("typing", "TypeVarTuple"), ("typing", "Unpack"),
              ("typing", "dataclass_transform"), ("typing", "get_overloads"),
              ("datetime", "UTC"), ("enum", "StrEnum"), ("enum", "ReprEnum"),
              ("enum", "verify"), ("enum", "member"), ("enum", "nonmember"),
              ("enum", "global_enum"), ("enum", "EnumCheck"), ("asyncio", "TaskGroup"),
              ("asyncio", "timeout"), ("asyncio", "Runner"), ("contextlib", "chdir"),
              ("hashlib", "file_digest"), ("operator", "call"), ("math", "cbrt"),
              ("math", "exp2"), ("logging", "getLevelNamesMapping"),
              ("inspect", "getmembers_static"), ("re", "NOFLAG"), ("sys", "exception"),
              ("locale", "getencoding"), ("builtins", "ExceptionGroup"),
              ("builtins", "BaseExceptionGroup"), (None, "add_note")},
    (3, 12): {("itertools", "batched"), ("typing", "override"), ("typing", "TypeAliasType"),
              ("os.path", "splitroot"), ("tarfile", "data_filter"),
              ("tarfile", "fully_trusted_filter"), ("math", "sumprod"), ("calendar", "Month"),
              ("sys", "monitoring")},
    (3, 13): {("warnings", "deprecated"), ("copy", "replace"), ("typing", "ReadOnly"),
              ("typing", "TypeIs"), ("typing", "NoDefault"), ("os", "process_cpu_count"),
              ("queue", "ShutDown"), ("math", "fma"),
              ("builtins", "PythonFinalizationError")},
    (3, 14): {("annotationlib", None), ("compression", None), ("string.templatelib", None),
              (None, "terminate_workers"), (None, "kill_workers")},
}


def _python_requires():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    found = re.fullmatch(r">=\s*3\.(\d+)", config["options"]["python_requires"].strip())
    assert found, "python_requires is not '>=3.N': teach this test the new form"
    return (3, int(found.group(1)))


def _feature_checked(tree):
    """The names a module reads only after asking: hasattr(X, "n"), getattr(X, "n", d)."""
    checked = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)):
            checked.add(node.args[1].value)
    return checked


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def newer_names_used(source, since):
    """[(line, what, version)] of `source`'s uses of standard-library names newer than
    `since` (a (3, N) tuple); what hasattr/getattr checks first is left out."""
    tree = ast.parse(source, feature_version=since)  # refuses newer syntax (except*, ...)
    newer = {key: version for version, keys in NEWER_NAMES.items() if version > since
             for key in keys}
    modules = {m for m, n in newer if n is None}
    checked = _feature_checked(tree)
    aliases = {}  # local name -> module, from "import M [as A]"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
                if alias.name in modules:
                    found.append((node.lineno, alias.name, newer[(alias.name, None)]))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module in modules:
                found.append((node.lineno, node.module, newer[(node.module, None)]))
            for alias in node.names:
                if (node.module, alias.name) in newer:
                    found.append((node.lineno, f"{node.module}.{alias.name}",
                                  newer[(node.module, alias.name)]))
        elif isinstance(node, ast.Attribute) and node.attr not in checked:
            dotted = _dotted(node.value)
            module = aliases.get(dotted.split(".")[0]) if dotted else None
            if module is not None:
                module = ".".join([module, *dotted.split(".")[1:]])
            key = next((k for k in ((module, node.attr), (None, node.attr)) if k in newer),
                       None)
            if key is not None:
                found.append((node.lineno, f"{module or '…'}.{node.attr}", newer[key]))
        elif (isinstance(node, ast.Name) and node.id not in checked
              and ("builtins", node.id) in newer):
            found.append((node.lineno, node.id, newer[("builtins", node.id)]))
    return found


def test_the_scan_finds_what_is_newer_than_python_requires():
    source = ("import tomllib\nfrom typing import Self\nimport datetime as dt\n"
              "x = dt.UTC\ne.add_note('n')\nraise ExceptionGroup('g', [])\n"
              "if hasattr(pool, 'terminate_workers'):\n    pool.terminate_workers()\n")
    assert sorted((line, what) for line, what, _ in newer_names_used(source, (3, 10))) == [
        (1, "tomllib"), (2, "typing.Self"), (4, "datetime.UTC"), (5, "….add_note"),
        (6, "ExceptionGroup")]
    assert newer_names_used(source, (3, 11)) == []
    try:
        newer_names_used("try:\n    pass\nexcept* ValueError:\n    pass\n", (3, 10))
    except SyntaxError:
        pass
    else:
        raise AssertionError("except* parsed as 3.10 code")


def test_the_code_runs_on_the_oldest_python_setup_cfg_allows():
    """python_requires says >=3.10 and the suite mostly runs on newer Pythons (README's lowest
    releases ran on 3.10.13): the package, its tools and tests use no syntax and no
    standard-library name newer than it, unless behind a hasattr/getattr feature check."""
    since = _python_requires()
    uses = []
    for folder in ("hubensemble", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, what, version in newer_names_used(path.read_text(), since):
                uses.append(f"{path.relative_to(ROOT)}:{line}: {what} "
                            f"(Python {version[0]}.{version[1]})")
    assert uses == [], (
        f"setup.cfg's python_requires is >={since[0]}.{since[1]}, but the code uses newer "
        "names: guard each with a hasattr() feature check, or raise python_requires (and "
        "README's 'Requirements'):\n" + "\n".join(uses))


def _lower_bounds():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    bounds = {}
    for line in config["options"]["install_requires"].splitlines():
        found = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9.]+)", line)
        if found:
            bounds[found.group(1).lower()] = found.group(2)
    return bounds


def _release(text):
    return tuple(int(p) for p in text.split("."))


def test_setup_cfgs_lower_bounds_are_the_oldest_releases_the_readme_says_were_tested():
    """Each `name>=X` in install_requires is a release README names as run: the oldest
    releases tested together, `name X.Y.Z` with X.Y.Z at X's release (tensorflow>=2.20 and
    2.20.0). setup.cfg claimed bounds no one had installed (tensorboard>=2.16 allowed
    2.16.0, which pulls tf-keras-nightly and so tf-nightly)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"oldest\s+releases\s+it\s+was\s+tested\s+with[^:]*:(.*?)\.\s", text, re.S)
    assert found, "README's 'Requirements' paragraph lost its list of the oldest releases"
    tested = {name.lower(): version for name, version in
              re.findall(r"([A-Za-z][A-Za-z0-9_.\-]*)\s+(\d+(?:\.\d+)*)", found.group(1))}
    wrong = []
    for name, bound in _lower_bounds().items():
        version = tested.get(name)
        if version is None:
            wrong.append(f"{name}>={bound}: not in README's list")
        elif _release(version)[:len(_release(bound))] != _release(bound):
            wrong.append(f"{name}>={bound}: README says {version} was tested")
    assert wrong == [], ("setup.cfg's lower bounds and README's 'Requirements' differ: "
                         "re-run the suite on the oldest releases (README says how) and "
                         "change both:\n" + "\n".join(wrong))
    since = _python_requires()
    assert f"Python {since[0]}.{since[1]}" in text
