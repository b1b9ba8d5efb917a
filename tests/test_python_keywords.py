"""Every public function of the Python API refuses a mistyped keyword naming the one meant,
before any work, one way (`errors.check_keywords_known`), and keeps its signature."""

import dataclasses
import inspect

import pytest

import hubensemble
from hubensemble.errors import check_keywords_known


def public_functions():
    """(name, function) of every function `hubensemble` exports (`__all__`), classes aside,
    and of every one README.md and docs/*.md call as hubensemble.MODULE.NAME(…)."""
    import importlib
    import pathlib
    import re

    found = {}
    for name in hubensemble.__all__:
        value = getattr(hubensemble, name)
        if callable(value) and not inspect.isclass(value):
            found[name] = value
    root = pathlib.Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for name in re.findall(r"hubensemble\.([a-z_]+(?:\.[a-z_]+)*)\(", doc.read_text()):
            module, _, attr = f"hubensemble.{name}".rpartition(".")
            value = getattr(importlib.import_module(module), attr)
            if not inspect.isclass(value):
                found.setdefault(name, value)
    return sorted(found.items())


def mistyped(word: str, names) -> str:
    """`word` with two unlike neighbouring letters swapped, from its middle on (run_dir ->
    run_idr, progress -> progerss), and none of `names`."""
    for i in [*range(len(word) // 2, len(word) - 1), *range(len(word) // 2)]:
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if typo not in names:
            return typo
    raise AssertionError(f"no typo of {word!r}")


def test_the_walk_finds_the_documented_functions():
    names = {name for name, _ in public_functions()}
    assert {"fit", "predict", "write_report", "greedy_select", "load_catalogue",
            "get_strategy", "run_rank", "evaluate_model", "labelcheck.run_label_check",
            "export.read_metadata", "hub.register_resolver"} <= names


@pytest.mark.parametrize("name", [n for n, _ in public_functions()])
def test_a_mistyped_keyword_of_every_public_function_names_the_one_meant(
        tmp_path, name, monkeypatch):
    """fit(catalgue=…), write_report(rundir=…), predict(image_path=…), greedy_select(objectiv=…)
    were told Python 3.11's "unexpected keyword argument" with no "did you mean", or (fit)
    "missing 1 required positional argument: 'catalogue'"; the stage functions named it."""
    function = dict(public_functions())[name]
    signature = inspect.signature(function)
    assert signature == inspect.signature(inspect.unwrap(function))  # intact for inspect
    assert "args" not in signature.parameters  # not the wrapper's (*args, **kwargs)
    named = [p for p in signature.parameters.values()  # (y, k: a letter has no typo to name)
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and len(p.name) > 1]
    if not named:  # custom_objects(): nothing to mistype
        return
    monkeypatch.chdir(tmp_path)
    for param in named:
        bad = mistyped(param.name, signature.parameters)
        with pytest.raises(TypeError) as caught:
            function(**{bad: str(tmp_path / "x")})
        assert str(caught.value) == (f"{function.__name__}() got an unexpected keyword "
                                     f"argument {bad!r} (did you mean {param.name}?)")
    assert list(tmp_path.iterdir()) == []  # refused before any work


@pytest.mark.parametrize("call, words", [
    (lambda d: hubensemble.write_report(rundir=d), "write_report() got an unexpected keyword "
     "argument 'rundir' (did you mean run_dir?)"),
    (lambda d: hubensemble.predict(d, image_path=[]), "predict() got an unexpected keyword "
     "argument 'image_path' (did you mean image_paths?)"),
    (lambda d: hubensemble.greedy_select(None, None, objectiv="ce"), "greedy_select() got an "
     "unexpected keyword argument 'objectiv' (did you mean objective?)"),
    (lambda d: hubensemble.fit(catalgue="c.yaml", data="sklearn:digits", out=d / "run"),
     "fit() got an unexpected keyword argument 'catalgue' (did you mean catalogue?)"),
    (lambda d: hubensemble.load_module(handel=d), "load_module() got an unexpected keyword "
     "argument 'handel' (did you mean handle?)")])
def test_the_last_stops_examples_name_the_one_meant(tmp_path, call, words):
    with pytest.raises(TypeError) as caught:
        call(tmp_path)
    assert str(caught.value) == words
    assert list(tmp_path.iterdir()) == []


def test_fits_options_are_still_fits_to_refuse(tmp_path):
    """A keyword fit's **options take is never read as a mistyped parameter of fit's own;
    an unknown option is still fit's refusal, listing the options."""
    signature = inspect.signature(inspect.unwrap(hubensemble.fit))
    for field in dataclasses.fields(hubensemble.FitOptions):
        check_keywords_known(hubensemble.fit, signature, {field.name: None})
    with pytest.raises(TypeError, match=r"^fit\(\) got unknown option topk \(did you mean "
                                        r"top_k\?\); the options are "):
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "run", topk=3)
    # given positionally, catalogue is no longer what "catalgue" mistypes: fit's option words
    with pytest.raises(TypeError, match=r"^fit\(\) got unknown option catalgue;"):
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "run", catalgue=3)
    assert list(tmp_path.iterdir()) == []


#: Public classes that are no dataclass: Keras layers (`test_a_keras_layers_mistyped_keyword…`).
NOT_CHECKED = {"HubLayer", "EnsembleLayer"}


@pytest.mark.parametrize("name", [n for n in hubensemble.__all__ if n not in NOT_CHECKED
                                  and inspect.isclass(getattr(hubensemble, n, None))])
def test_a_mistyped_keyword_of_a_public_record_names_the_one_meant(name):
    """ModuleSpec(nmae=…) and Task(nmae=…) were told Python's bare "unexpected keyword
    argument"; the constructor's signature stays the dataclass's, for inspect."""
    cls = getattr(hubensemble, name)
    assert dataclasses.is_dataclass(cls)
    signature = inspect.signature(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    assert list(signature.parameters) == fields
    first = fields[0]
    bad = mistyped(first, fields)
    with pytest.raises(TypeError) as caught:
        cls(**{bad: None})
    assert str(caught.value) == (f"{name}() got an unexpected keyword argument {bad!r} "
                                 f"(did you mean {first}?)")


def test_fit_options_and_result_name_the_field_a_mistyped_keyword_meant():
    """FitOptions(topk=3) and FitResult(rundir=…) were told Python's bare "unexpected keyword
    argument" (make_dataclass's and dataclass' own __init__); they name the field meant, as
    fit(topk=3) does. Fails before: no "(did you mean …?)"."""
    with pytest.raises(TypeError) as caught:
        hubensemble.FitOptions(topk=3)
    assert str(caught.value) == ("FitOptions() got an unexpected keyword argument 'topk' "
                                 "(did you mean top_k?)")
    with pytest.raises(TypeError) as caught:
        hubensemble.FitResult(rundir=None)
    assert str(caught.value) == ("FitResult() got an unexpected keyword argument 'rundir' "
                                 "(did you mean run_dir?)")
    assert hubensemble.FitOptions(top_k=3).top_k == 3  # the fields themselves still taken
    assert dataclasses.replace(hubensemble.FitOptions(), top_k=4).top_k == 4


@pytest.mark.parametrize("call, words", [
    (lambda d: hubensemble.HubLayer(handel=d), "HubLayer() got an unexpected keyword argument "
     "'handel' (did you mean handle?)"),
    (lambda d: hubensemble.HubLayer(d, trainabel=True), "HubLayer() got an unexpected keyword "
     "argument 'trainabel' (did you mean trainable?)"),
    (lambda d: hubensemble.HubLayer(d, nmae="m"), "HubLayer() got an unexpected keyword "
     "argument 'nmae' (did you mean name?)"),  # Keras' own keyword, passed on by **kwargs
    (lambda d: hubensemble.EnsembleLayer(memebrs=[]), "EnsembleLayer() got an unexpected "
     "keyword argument 'memebrs' (did you mean members?)"),
    (lambda d: hubensemble.EnsembleLayer([], from_logit=True), "EnsembleLayer() got an "
     "unexpected keyword argument 'from_logit' (did you mean from_logits?)")])
def test_a_keras_layers_mistyped_keyword_names_the_one_meant(tmp_path, call, words):
    """HubLayer(handel=…) was told "HubLayer.__init__() missing 1 required positional
    argument: 'handle'", HubLayer(…, trainabel=True) Keras' "Unrecognized keyword arguments
    passed to HubLayer: {'trainabel': True}": the layers take **kwargs for Keras. Fails
    before: those words."""
    with pytest.raises(TypeError) as caught:
        call(str(tmp_path / "m"))
    assert str(caught.value) == words
    assert list(tmp_path.iterdir()) == []


def test_a_keras_layer_keeps_its_signature_and_keras_keywords(tiny_module):
    """checks_keywords' __init__ keeps the layer's signature (Keras' auto config reads it
    with getfullargspec, which follows no __wrapped__) and Keras' own keywords."""
    layer = hubensemble.HubLayer(tiny_module, name="mine", dtype="float32")
    assert layer.name == "mine"
    assert list(inspect.signature(hubensemble.HubLayer).parameters)[0] == "handle"
    assert inspect.getfullargspec(hubensemble.HubLayer.__init__).args[:2] == ["self", "handle"]
    assert hubensemble.HubLayer.from_config(layer.get_config()).name == "mine"


@pytest.mark.parametrize("call, words", [
    (lambda d: hubensemble.predict(d, imagess=[]), "predict() got an unexpected keyword "
     "argument 'imagess' (did you mean image_paths?)"),
    (lambda d: hubensemble.predict(d, imgaes=[]), "predict() got an unexpected keyword "
     "argument 'imgaes' (did you mean image_paths?)"),
    (lambda d: hubensemble.fit("c.yaml", "sklearn:digits", out_dir=d), "fit() got an "
     "unexpected keyword argument 'out_dir' (did you mean out?)"),
    (lambda d: hubensemble.fit("c.yaml", "sklearn:digits", outdir=d), "fit() got an "
     "unexpected keyword argument 'outdir' (did you mean out?)"),
    (lambda d: hubensemble.run_tune(run=d), "run_tune() got an unexpected keyword argument "
     "'run' (did you mean run_dir?)"),
    (lambda d: hubensemble.evaluate_model(model=d, task=None), "evaluate_model() got an "
     "unexpected keyword argument 'model' (did you mean model_dir?)"),
    (lambda d: hubensemble.predict(d, [], zzz=1), "predict() got an unexpected keyword "
     "argument 'zzz'; it takes model_dir, image_paths, top, skip_unreadable, batch_size, "
     "progress")])
def test_a_keyword_in_other_words_names_the_one_meant(tmp_path, call, words):
    """predict(imagess=…) and fit(out_dir=…) (run_rank's word) were told Python's bare
    "unexpected keyword argument" or "missing 1 required positional argument: 'out'": too
    far by git's rule, they name the keyword in other words (`errors.keyword_meant`: the
    first word alike, less a plural "s" or "dir"); a keyword meaning none is told the ones
    the function takes. Fails before: no "(did you mean …)", no list."""
    with pytest.raises(TypeError) as caught:
        call(str(tmp_path / "x"))
    assert str(caught.value) == words
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("members, error, words", [
    ("m.keras", TypeError, "EnsembleLayer() members must be a list of Keras models or layers, "
     "got str 'm.keras'; e.g. EnsembleLayer([model_a, model_b])"),
    ([], ValueError, "EnsembleLayer() members is empty: it needs at least one member, a Keras "
     "model or layer; e.g. EnsembleLayer([model_a, model_b])"),
    ([len, "b.keras"], ValueError, "EnsembleLayer() members[1] must be a Keras model or "
     "layer, got str 'b.keras'; e.g. EnsembleLayer([model_a, model_b])")])
def test_ensemble_layer_names_the_member_refused(members, error, words):
    """EnsembleLayer("m.keras") was told "got str", a member of another kind "got str" with
    no index, no value and no way on. Fails before: those words."""
    with pytest.raises(error) as caught:
        hubensemble.EnsembleLayer(members)
    assert str(caught.value) == words
