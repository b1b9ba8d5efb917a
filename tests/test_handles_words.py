"""A refused handle's way on in each caller's words (handles.HandleFormError's parts): a
catalogue file and the command line write a value, a Python call passes a keyword."""

import pytest

from hubensemble.catalogue import CatalogueError, ModuleSpec, load_catalogue
from hubensemble.handles import HandleFormError, check_handle_form

#: Short enough to be echoed whole (catalogue_fields.SHOWN_CHARS).
OWN = "https://www.kaggle.com/models/g/m/tensorFlow2/v"
#: Handles check_handle_form refuses, one per kind of way on it gives ("ab:c", a scheme not
#: supported, is HubLayer's resolvers' to judge: `hub.resolvers.handle_prefix`).
REFUSED = ["keras:MobileNetV3small", "keras:zzzqqq", " keras:MobileNetV3Small",
           "https://tfhub.dev/google/bit/m-r50x1/1?tf-hub-format=compressed",
           "https://tfhub.dev/google/bit/m-r50x1", OWN, OWN + "/1?x=1", "kaggle:a/b", "zoo:x",
           "file:abc", "m.weights.h5", "kaggle://a/b", "hf://a",
           "file://otherhost/share/m", "https://host", "https://u:p@host/m.tar.gz"]


def _refusal(handle) -> HandleFormError:
    with pytest.raises(HandleFormError) as err:
        check_handle_form(handle)
    return err.value


def test_hub_layer_is_told_the_handle_to_pass_as_a_python_call():
    """HubLayer(handle='keras:MobileNetV3small') was told a catalogue's words, "write
    keras:MobileNetV3Small instead", which a Python caller does not write. Fails before:
    "write keras:MobileNetV3Small instead"."""
    from hubensemble.hub import HubLayer

    with pytest.raises(ValueError) as err:
        HubLayer(handle="keras:MobileNetV3small")
    assert str(err.value) == ("HubLayer handle 'keras:MobileNetV3small' is not a "
                              "keras.applications architecture; pass "
                              "handle='keras:MobileNetV3Small' instead")


@pytest.mark.parametrize("handle", REFUSED)
def test_a_python_call_is_told_a_call_and_a_catalogue_its_own_words(handle, tmp_path,
                                                                    monkeypatch):
    """HubLayer and a ModuleSpec made in Python are told the same Python words of one
    refusal (a ModuleSpec's were the catalogue's rewritten by catalogue_fields.python_words,
    HubLayer's the catalogue's: "write handle: 'keras:MobileNetV3Small' instead"); a
    catalogue file keeps its own. Fails before: HubLayer's hint for every handle with a
    way on that differs between the forms."""
    from hubensemble.hub import HubLayer

    monkeypatch.chdir(tmp_path)  # "m.weights.h5", "file:abc": relative to an empty folder
    refusal = _refusal(handle)
    python, yaml = refusal.python_hint, refusal.hint
    assert not python.startswith("write ") and " write " not in python, python
    with pytest.raises(ValueError) as err:
        HubLayer(handle=handle)
    assert str(err.value) == f"HubLayer handle {refusal.problem}; {python}"
    with pytest.raises(ValueError) as err:
        ModuleSpec(name="a", handle=handle)
    assert str(err.value).endswith(f"field 'handle': {refusal.problem}; {python}"), err.value
    path = tmp_path / "c.yaml"
    path.write_text("modules:\n  - name: a\n    handle: '" + handle.replace("'", "''") + "'\n")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    assert str(err.value).endswith(f"field 'handle': {refusal.problem}; {yaml}"), err.value


def test_the_misspelt_architecture_keeps_its_words_in_a_catalogue_and_on_the_command_line(
        tmp_path, in_process, monkeypatch):
    """The same handle in a catalogue file and as `catalogue add`'s HANDLE: a value to write
    (no keyword, no Python quoting)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: a, handle: keras:MobileNetV3small}\n")
    with pytest.raises(CatalogueError, match=r"c\.yaml:2: field 'handle': "
                                             r"'keras:MobileNetV3small' is not a "
                                             r"keras\.applications architecture; write "
                                             r"keras:MobileNetV3Small instead$"):
        load_catalogue(tmp_path / "c.yaml")
    code, _, err = in_process("catalogue", "add", "keras:MobileNetV3small", "--to", "my.yaml")
    assert code == 2 and err.endswith(
        "'keras:MobileNetV3small' is not a keras.applications architecture; run `hubensemble "
        "catalogue add --to my.yaml keras:MobileNetV3Small` instead\n"), err
    assert not (tmp_path / "my.yaml").exists()


def test_load_module_of_a_non_str_handle_is_told_a_python_call():
    """load_module(None)'s TypeError (handles.HandleTypeError, for a Python caller) said
    "write one of … instead". Fails before: "write"."""
    from hubensemble.hub import load_module

    with pytest.raises(TypeError, match=r"^handle must be a non-empty string, got NoneType "
                                        r"None; pass one of https://tfhub\.dev/"):
        load_module(None)


def test_a_weights_value_is_told_in_each_form():
    """check_weights' way on: a catalogue's "weights: imagenet", a call's weights='imagenet'."""
    from hubensemble.handles import check_weights

    with pytest.raises(HandleFormError) as err:
        check_weights("w.txt")
    assert err.value.hint.startswith("write weights: imagenet or the path of the .h5 file")
    assert err.value.python_hint.startswith("pass weights='imagenet' or the path of the .h5")


@pytest.mark.parametrize("weights, words", [
    ("file://otherhost/share/w.h5", "; pass the mounted folder's path (file:///MOUNT/PATH), or "
     "file:///share/w.h5 for the path /share/w.h5 on this machine, or otherhost/share/w.h5 "
     "for a path relative to the working folder"),
    ("w.txt", "; pass weights='imagenet' or the path of the .h5 file the architecture's "
     "weights were saved to"),
])
def test_hub_layer_weights_are_told_the_checks_own_way_on(weights, words):
    """HubLayer's refused `weights` was told one generic line ("pass weights='imagenet' or the
    path of a .h5/.keras weights file"), a file://HOST/… path too, where a catalogue's entry
    is told to write its mounted path. Fails before: the generic line for each."""
    from hubensemble.hub import HubLayer

    with pytest.raises(ValueError) as err:
        HubLayer(handle="keras:MobileNetV3Small", weights=weights)
    assert str(err.value).startswith(f"HubLayer weights {weights!r}"), err.value
    assert str(err.value).endswith(words), err.value


@pytest.mark.parametrize("handle", REFUSED)
def test_load_module_refuses_a_handle_form_in_a_python_calls_words(handle, tmp_path,
                                                                   monkeypatch):
    """load_module form-checked only a handle that is not a str: a str one went to the
    resolvers, 'keras:MobileNetV3small' to a bare KeyError ("unknown keras.applications
    architecture 'MobileNetV3small'", no way on), an unversioned tfhub.dev URL to the network.
    Now the check's refusal, a ValueError with its way on as a call passes it (HubLayer's).
    Fails before: a KeyError or a ModuleLoadError for each."""
    from hubensemble.hub import load_module

    monkeypatch.chdir(tmp_path)
    refusal = _refusal(handle)
    with pytest.raises(HandleFormError) as err:
        load_module(handle)
    assert str(err.value) == f"handle {refusal.problem}; {refusal.python_hint}"
    assert err.value.hint == err.value.python_hint == refusal.python_hint


def test_load_module_leaves_another_prefix_to_its_resolver(tmp_path, monkeypatch):
    """A prefix no built-in form has ("ab:c") is a plug-in resolver's to judge, as HubLayer
    leaves it (`hub.resolvers.handle_prefix`): the resolver chain's refusal, not the form's."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import load_module

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModuleLoadError, match=r"^\[handle\] handle 'ab:c': no resolver for ab: "):
        load_module("ab:c")


def _h5(path):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1.0])
    return str(path)


@pytest.mark.parametrize("how", ["locate", "runtime with a weights file"])
def test_an_unknown_architecture_below_load_module_is_told_a_call(how, tmp_path):
    """`locate` and `ModuleRuntime.load` (no form check of their own) of 'keras:MobileNetV3small'
    met a bare KeyError in hub.sources ("unknown keras.applications architecture …": in
    imagenet_weights_request, and build_application's KERAS_APPLICATIONS[name] with a weights
    file). Now ModuleLoadError(stage "handle") with the check's way on as a call passes it.
    Fails before: KeyError."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import ModuleRuntime, locate

    handle = "keras:MobileNetV3small"
    words = ("[handle] handle 'keras:MobileNetV3small': 'keras:MobileNetV3small' is not a "
             "keras.applications architecture; pass handle='keras:MobileNetV3Small' instead")
    with pytest.raises(ModuleLoadError) as err:
        if how == "locate":
            locate(handle)
        else:
            ModuleRuntime.load(handle, weights=_h5(tmp_path / "w.weights.h5"))
    assert str(err.value) == words
    assert err.value.stage == "handle"


@pytest.mark.parametrize("handle, words", [
    ("google/bit/m-r50x1/1", "; for TF Hub's module pass "
     "handle='https://tfhub.dev/google/bit/m-r50x1/1'; or pass one of https://tfhub.dev/"),
    ("abc", "holds no file or folder 'abc'; pass one of https://tfhub.dev/"),
])
def test_the_local_resolver_tells_a_relative_name_a_call(handle, words, tmp_path, monkeypatch):
    """load_module("google/bit/m-r50x1/1"), a name in no folder, was told "for TF Hub's module
    write https://…": a catalogue's handle is absolute before it reaches the LocalResolver
    (`handles.stored_handle`), so only a Python caller is told this. Fails before: "write"."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import load_module

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModuleLoadError) as err:
        load_module(handle)
    assert err.value.stage == "local path"
    assert words in str(err.value) and " write " not in str(err.value), err.value


def test_the_local_resolver_tells_another_machines_file_url_a_call():
    """hub.resolve("file://host/m") (a Python caller's: a catalogue refuses the handle when it
    is read) was told "… or host/m for a path relative to the catalogue's folder". Fails
    before: "write …", "catalogue's folder"."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import resolve

    refusal = _refusal("file://host/m")
    with pytest.raises(ModuleLoadError) as err:
        resolve("file://host/m")
    assert str(err.value) == (f"[local path] handle 'file://host/m': {refusal.problem}; "
                              f"{refusal.python_hint}")
    assert refusal.python_hint.endswith("relative to the working folder"), refusal.python_hint


@pytest.mark.parametrize("field, value", [("value_range", "-1,1"), ("input_size", (8, 8)),
                                          ("input_dtype", "uint8"), ("signature", "serve"),
                                          ("weights", "imagenet")])
def test_hub_layer_is_told_the_source_rules_own_way_on(field, value, tmp_path):
    """HubLayer wrote its own way on for an argument its kind of module does not take ("leave
    value_range out"), where a ModuleSpec made in Python is told the rule's own
    (`handles.source_problems`, in a call's words: `catalogue_fields.python_words`), "leave
    value_range out (or pass value_range=(0, 1))". Fails before: value_range's."""
    from hubensemble.hub import HubLayer

    handle = "keras:MobileNetV3Small" if field != "weights" else str(tmp_path / "m.keras")
    with pytest.raises(ValueError) as spec_err:
        ModuleSpec(name="a", handle=handle, **{field: value})
    with pytest.raises(ValueError) as layer_err:
        HubLayer(handle=handle, **{field: value})
    hint = str(spec_err.value).rpartition(f"field {field!r}: ")[2]
    assert str(layer_err.value).startswith(f"HubLayer {field}="), layer_err.value
    assert str(layer_err.value).endswith(hint.partition("; ")[2]), (layer_err.value, hint)


@pytest.mark.parametrize("weights", ["w.txt", "", "file://otherhost/share/w.h5"])
def test_load_module_weights_are_told_the_checks_way_on_as_a_call(weights):
    """load_module's `weights` went unchecked to hub.locate: "w.txt" and "" were told "the
    weights file … does not exist; check `weights:` on the entry (relative paths are
    relative to the catalogue's folder)", a file://HOST/… one a bare HandleFormError in a
    catalogue's words. Now `handles.check_weights`' refusal, its way on as a call passes it
    (HubLayer's). Fails before: a ModuleLoadError, or the catalogue's words."""
    from hubensemble.handles import check_weights
    from hubensemble.hub import load_module

    with pytest.raises(HandleFormError) as refusal:
        check_weights(weights)
    with pytest.raises(HandleFormError) as err:
        load_module("keras:MobileNetV3Small", weights=weights)
    assert str(err.value) == (f"weights {refusal.value.problem}; "
                              f"{refusal.value.python_hint}"), err.value


@pytest.mark.parametrize("field, value", [("input_size", (8, 8)), ("signature", "serve"),
                                          ("layer", "dense")])
def test_load_module_is_told_the_source_rule_as_hub_layer(field, value):
    """load_module of keras:MobileNetV3Small with a `signature` or `layer` (which only a
    SavedModel or a .keras/.h5 file takes) ignored it, and an input_size below the
    architecture's smallest failed in Keras; HubLayer refuses them by the catalogue's rule
    (`handles.source_problems`). Now load_module too, in the same words. Fails before: no
    refusal, or Keras' own."""
    from hubensemble.hub import HubLayer, load_module

    with pytest.raises(ValueError) as layer_err:
        HubLayer(handle="keras:MobileNetV3Small", **{field: value})
    with pytest.raises(ValueError) as err:
        load_module("keras:MobileNetV3Small", **{field: value})
    assert str(err.value) == "load_module() " + str(layer_err.value)[len("HubLayer "):]
