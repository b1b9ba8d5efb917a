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


# --- dependencies' internals: each use noted in setup.cfg ------------------------------------

#: Module paths that are a dependency's own code, not its public API.
PRIVATE_MODULES = ("keras.src", "tensorflow.python", "tf_keras", "keras_tuner.src")
#: Dependencies whose `_`-prefixed modules and attributes (and tensorflow_hub's modules) are
#: internals: setup.cfg's install_requires and extras, by import name, and tf_keras.
DEPENDENCIES = ("keras", "tensorflow", "keras_tuner", "tensorflow_hub", "tf_keras",
                "tensorflow_datasets", "tensorboard", "numpy", "sklearn", "yaml", "matplotlib",
                "tqdm", "filelock", "PIL", "packaging", "scipy", "ai_edge_litert", "keras_hub",
                "kagglehub", "huggingface_hub")
#: tensorflow_hub's public API: the names its __init__.py imports (0.16.1); its modules
#: (resolver, compressed_module_resolver, file_utils, ...) are not.
TENSORFLOW_HUB_PUBLIC = {"KerasLayer", "load", "resolve", "__version__"}
#: How Keras marks a tensor's or an error's own state: `x._keras_history`,
#: `e._keras_call_info_injected`, on objects a scan cannot type.
KERAS_PRIVATE_PREFIXES = ("_keras", "_tf_")
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")
                                         and name != "__internal__")


def internal_key(path):
    """The dotted `path` cut just after its first private part (a private module, a
    tensorflow_hub module, a `_`-prefixed attribute of a dependency); None when public."""
    if any(path == p or path.startswith(p + ".") for p in PRIVATE_MODULES):
        return path
    parts = path.split(".")
    if parts[0] not in DEPENDENCIES:
        return None
    if parts[0] == "tensorflow_hub" and len(parts) > 1 and parts[1] not in TENSORFLOW_HUB_PUBLIC:
        return ".".join(parts[:2])
    cut = next((i for i, part in enumerate(parts[1:], 1) if _private(part)), None)
    return None if cut is None else ".".join(parts[:cut + 1])


def internals_used(source):
    """[(line, internal)] of `source`'s uses of its dependencies' internals: imports of a
    private module (or a tensorflow_hub module, `hub.tfhub.submodule("x")` too), dotted
    names through them or through a `_`-prefixed attribute of a dependency, strings that
    name one ("keras.src.backend.config", a list of internals) and attributes Keras marks
    objects with (`KERAS_PRIVATE_PREFIXES`). Attributes of objects the scan cannot type are
    `private_attributes_used`'s."""
    tree = ast.parse(source)
    aliases, found = {}, set()

    def add(line, path):
        key = internal_key(path)
        if key:
            found.add((line, key))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, alias.name)
                top = alias.name.split(".")[0]
                aliases[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                add(node.lineno, f"{node.module}.{alias.name}")
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node) if id(node) not in inner else None  # the whole chain
            if dotted and dotted.split(".")[0] in aliases:
                head, _, rest = dotted.partition(".")
                add(node.lineno, f"{aliases[head]}.{rest}")
            if node.attr.startswith(KERAS_PRIVATE_PREFIXES):
                found.add((node.lineno, node.attr))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and _DOTTED_PATH.fullmatch(node.value)):
            add(node.lineno, node.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
              and aliases.get(node.func.id) == "hubensemble.hub.tfhub.submodule"
              and isinstance(node.args[0], ast.Constant)):
            add(node.lineno, f"tensorflow_hub.{node.args[0].value}")
    return sorted(found)


def noted(internal, text):
    """Whether setup.cfg's `text` names `internal`: a private attribute by its name
    (`_save_trial`); a module path by itself, by a private module it is in
    ("keras.src.utils.file_utils" notes keras.src.utils.file_utils.get_file; the bare
    "keras.src" notes nothing) or by something in it (keras.src.utils.file_utils.get_file
    notes the import of keras.src.utils.file_utils)."""
    last = internal.rsplit(".", 1)[-1]
    if _private(last):
        return re.search(rf"(?<!\w){re.escape(last)}(?!\w)", text) is not None
    roots = [p for p in PRIVATE_MODULES if internal.startswith(p + ".") or internal == p]
    deepest_root = len(roots[0].split(".")) if roots else 1
    for name in re.findall(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", text):
        if name == internal or name.startswith(internal + "."):
            return True
        if internal.startswith(name + ".") and len(name.split(".")) > deepest_root:
            return True
    return False


def _unnoted(found_by_path):
    text = (ROOT / "setup.cfg").read_text()
    return [f"{path}:{line}: {internal}" for path, uses in found_by_path
            for line, internal in uses if not noted(internal, text)]


def test_the_scan_finds_the_internals_of_dependencies():
    source = ("import keras\nimport tensorflow as tf\nimport sys\n"
              "from keras.src.utils import file_utils\n"
              "from tensorflow_hub import resolver, KerasLayer\n"
              "from hubensemble.hub.tfhub import submodule\n"
              "x = keras.src.backend.config.keras_home()\ny = keras.config.backend()\n"
              "z = sys.modules.get('keras.src.backend.config')\nfu = submodule('file_utils')\n"
              "tf.__internal__.x\ntf.__version__\ne._keras_call_info_injected = True\n"
              "NAMES = ('keras_tuner.engine.oracle.Oracle._save_trial', 'keras.layers.Dense')\n"
              "file_utils.get_file\nfrom huggingface_hub.utils import _http\n")
    assert internals_used(source) == [
        (4, "keras.src.utils.file_utils"), (5, "tensorflow_hub.resolver"),
        (7, "keras.src.backend.config.keras_home"), (9, "keras.src.backend.config"),
        (10, "tensorflow_hub.file_utils"), (11, "tensorflow.__internal__"),
        (13, "_keras_call_info_injected"),
        (14, "keras_tuner.engine.oracle.Oracle._save_trial"),
        (15, "keras.src.utils.file_utils.get_file"), (16, "huggingface_hub.utils._http")]
    text = "# keras.src.utils.file_utils.get_file, Oracle._save_trial (tensorflow_hub.resolver)"
    assert noted("keras.src.utils.file_utils", text)
    assert noted("keras.src.utils.file_utils.get_file.__wrapped__", text)
    assert noted("keras_tuner.engine.oracle.Oracle._save_trial", text)
    assert noted("tensorflow_hub.resolver", text)
    assert noted("keras.src.utils", text), "a note of what is used in it notes its import"
    assert not noted("keras.src.backend", text)
    assert not noted("keras.src.backend.config", "# keras.src, some_keras.src.backend.config")
    assert not noted("keras_tuner.engine.oracle.Oracle._save", text)


def test_every_internal_of_a_dependency_the_package_uses_is_noted_in_setup_cfg():
    """The guide's rule: where code relies on a library's internals, setup.cfg pins the
    tested range and says so. hub/sources.py and kerasenv.py read three Keras internals no
    note named; each use of a private module (keras.src, tensorflow.python, tf_keras,
    keras_tuner.src, tensorflow_hub's modules) or private attribute is named in setup.cfg,
    with why, the tested version and the fall-back."""
    found = [(path.relative_to(ROOT), internals_used(path.read_text()))
             for path in sorted((ROOT / "hubensemble").rglob("*.py"))]
    assert sum(len(uses) for _, uses in found) > 0, "the scan found nothing: is it broken?"
    unnoted = _unnoted(found)
    assert unnoted == [], (
        "hubensemble uses these internals of its dependencies, and setup.cfg does not name "
        "them: use the public API, or name each (its dotted path, or a private attribute's "
        "name) in the comment of its requirement in setup.cfg, with why, the tested "
        "version and what happens without it:\n" + "\n".join(unnoted))


def _private_class_attributes():
    """{name: "Class"} of the `_`-prefixed attributes of the Keras, TensorFlow and Keras
    Tuner classes hubensemble's objects are or subclass."""
    import keras
    import keras_tuner as kt
    import tensorflow as tf

    classes = (keras.Layer, keras.Model, keras.KerasTensor, keras.Variable,
               keras.optimizers.Optimizer, keras.callbacks.Callback, keras.losses.Loss,
               keras.metrics.Metric, tf.Module, tf.Variable, tf.train.Checkpoint, kt.Oracle,
               kt.Tuner, kt.engine.base_tuner.BaseTuner, kt.HyperModel, kt.HyperParameters,
               kt.engine.trial.Trial)
    return {name: cls.__name__ for cls in reversed(classes) for name in dir(cls)
            if _private(name)}


def private_attributes_used(source, private):
    """[(line, "Class._name")] of `source`'s reads and writes of an attribute in `private`
    ({name: class}, on any object, `self` too: a subclass's use of its base's internals)
    and of methods a class body defines under such a name (an override)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in private:
            found.add((node.lineno, f"{private[node.attr]}.{node.attr}"))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        item.name in private:
                    found.add((item.lineno, f"{private[item.name]}.{item.name}"))
    return sorted(found)


def test_every_private_attribute_of_keras_tensorflow_or_keras_tuner_used_is_noted():
    """As above, for the `_`-prefixed attributes of Keras, TensorFlow and Keras Tuner
    classes (read from the installed releases) that the package reads, sets or overrides:
    hub/layer.py's Layer._track_variable and hub/writer.py's Layer._flatten_layers were in
    no note. A class of ours whose own attribute shares such a name is named too: rename
    it."""
    private = _private_class_attributes()
    assert {"_track_variable", "_flatten_layers", "_save_trial"} <= set(private)
    found = [(path.relative_to(ROOT), private_attributes_used(path.read_text(), private))
             for path in sorted((ROOT / "hubensemble").rglob("*.py"))]
    unnoted = _unnoted(found)
    assert unnoted == [], (
        "hubensemble uses these private attributes of Keras, TensorFlow or Keras Tuner "
        "classes, and setup.cfg does not name them: use the public API, or name each in "
        "the comment of its requirement in setup.cfg, with why, the tested version and "
        "what happens without it:\n" + "\n".join(unnoted))
