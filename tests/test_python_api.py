"""The documented Python API (hubensemble's `__all__`) called with arguments of the wrong
type: each refusal names the function's argument, what it takes and what it got, before any
work is done or any folder is made (`text.typed`, `stageargs.folder`, `options.check`)."""

import os
import re
import pathlib

import numpy as np
import pytest

import hubensemble
from hubensemble.errors import CatalogueError, RunError
from hubensemble.options import OptionError


def _probs(m=3, n=8, c=2, seed=0):
    p = np.random.default_rng(seed).random((m, n, c)) + 0.1
    return p / p.sum(-1, keepdims=True), np.arange(n) % c


@pytest.mark.parametrize("value, shown", [(None, "NoneType None"), (3, "int 3"),
                                          (["runs/a"], "list of 1")])
def test_load_ranking_names_its_argument(tmp_path, value, shown):
    """load_ranking(None) said "expected str, bytes or os.PathLike object, not NoneType"."""
    with pytest.raises(TypeError, match=r"^load_ranking\(\) run_dir must be a folder path "
                                        rf"\(str or os\.PathLike\), got {shown}"):
        hubensemble.load_ranking(value)


def test_load_ranking_takes_a_path_object(tmp_path):
    """pathlib.Path is a folder as its text is: the missing file is named, not the type."""
    with pytest.raises(RunError, match="ranking.json is missing"):
        hubensemble.load_ranking(pathlib.Path(tmp_path))


@pytest.mark.parametrize("value, shown", [(None, "NoneType None"), (3, "int 3"),
                                          (pathlib.Path("demo.yaml"), "PosixPath"),
                                          (["demo.yaml"], "list of 1")])
def test_shipped_catalogue_names_its_argument(value, shown):
    """shipped_catalogue(3) said "no catalogue 3 ships with hubensemble"."""
    with pytest.raises(TypeError, match=r"^shipped_catalogue\(\) name must be the file name "
                                        rf"\(a str\) .*, got {shown}.*; e.g\. name='demo\.yaml'"):
        hubensemble.shipped_catalogue(value)
    assert hubensemble.shipped_catalogue("demo.yaml").name == "demo.yaml"


@pytest.mark.parametrize("value, shown", [(None, "NoneType None"), (3, "int 3"),
                                          ({"a": 1}, "dict")])
def test_load_module_names_its_handle(value, shown):
    """load_module(None) failed with "'NoneType' object has no attribute 'startswith'"."""
    with pytest.raises(TypeError, match=rf"^handle must be a non-empty string, got {shown}"):
        hubensemble.load_module(value)


@pytest.mark.parametrize("keyword, value, shown", [
    ("trust", "no", "str 'no'"), ("trust", 1, "int 1"), ("name", 3, "int 3"),
    ("sha256", b"ab", "bytes of 2")])
def test_load_module_names_its_other_arguments(tiny_module, keyword, value, shown):
    """trust="no" trusted the module (bool("no") is True); name=3 failed deep inside."""
    with pytest.raises(TypeError, match=rf"^load_module\(\) {keyword} must be .*, got {shown}"):
        hubensemble.load_module(tiny_module, **{keyword: value})


def test_load_module_takes_a_path_object(tiny_module):
    """A local module's folder as pathlib.Path loads as its text does (it failed with
    "'PosixPath' object has no attribute 'startswith'")."""
    loaded = hubensemble.load_module(pathlib.Path(tiny_module))
    assert loaded.handle == os.fspath(tiny_module)
    assert loaded.output_dim == hubensemble.load_module(os.fspath(tiny_module)).output_dim


@pytest.mark.parametrize("args, name, shown", [
    (("x", [0, 1]), "val_probs", "str 'x'"),
    (({"a": 1}, [0, 1]), "val_probs", "dict"),
    ((None, [0, 1]), "val_probs", "NoneType None"),
    (("probs", "ab"), "y", "str 'ab'"),
    (("probs", np.array([0.0, 1.0] * 4)), "y", r"ndarray float64 \[8\]"),
    (("probs", None), "y", "NoneType None")])
def test_greedy_select_names_its_arrays(args, name, shown):
    """greedy_select('x', …) said "could not convert string to float: np.str_('x')"."""
    probs, y = _probs()
    args = tuple(probs if isinstance(a, str) and a == "probs" else a for a in args)
    with pytest.raises(TypeError, match=rf"^greedy_select\(\) {name} must be an? \w+ array "
                                        rf".*, got {shown}"):
        hubensemble.greedy_select(*args)


def test_greedy_select_names_a_label_out_of_range():
    """It said "labels must be integers in [0, 2)", neither the label nor where."""
    with pytest.raises(ValueError, match=r"^greedy_select\(\) labels y must be integers in "
                                         r"\[0, 2\) \(the C = 2 classes of val_probs "
                                         r"\[M, N, C\]\), got y\[2\] = 5$"):
        hubensemble.greedy_select(np.full((2, 4, 2), 0.5), np.array([0, 1, 5, 0]))


@pytest.mark.parametrize("probs, y, shown", [
    (np.full((2, 0, 3), 1 / 3), np.zeros(0, int), r"\[2, 0, 3\] and \[0\]"),
    (np.full((0, 4, 3), 1 / 3), np.zeros(4, int), r"\[0, 4, 3\] and \[4\]"),
    (np.full((2, 4, 3), 1 / 3), np.zeros((4, 1), int), r"\[2, 4, 3\] and \[4, 1\]")])
def test_greedy_select_names_shapes_that_do_not_fit(probs, y, shown):
    """No validation examples (N = 0) failed in numpy: "zero-size array to reduction
    operation minimum which has no identity"."""
    with pytest.raises(ValueError, match=rf"^greedy_select\(\) expected val_probs \[M, N, C\] "
                       rf"with M >= 1 candidates and N >= 1 validation examples, and labels y "
                       rf"\[N\], got {shown}$"):
        hubensemble.greedy_select(probs, y)


@pytest.mark.parametrize("fault, words", [
    ("negative", r"val_probs\[1\] \(candidate 1's validation table \[N, C\]\) is not "
     r"probabilities: its row 2 is \[-0\.2, .*\], summing to [\d.]+; 1 of 6 rows are not "),
    ("sum", r"val_probs\[2\] .* its row 5 is \[.*\], summing to 2; 1 of 6 rows "),
    ("nan", r"val_probs\[0\] .* its row 3 holds \[.*nan.*\]; 1 of 6 rows hold a value that is "
     r"not finite"),
    ("logits", r"val_probs\[0\] .* its row 0 is \[-.*\], summing to -[\d.]+; 6 of 6 rows ")])
def test_greedy_select_refuses_tables_that_are_not_probabilities(fault, words):
    """Negative values, rows not summing to 1 and logits were averaged and scored without a
    word (a logit's cross-entropy floored at PROB_FLOOR), and a NaN said only "val_probs
    contain NaN or inf": the candidate, its row, what it holds and the rule are said."""
    rng = np.random.default_rng(0)
    probs, y = rng.dirichlet(np.ones(4), size=(3, 6)), rng.integers(0, 4, 6)
    if fault == "negative":
        probs[1, 2, 0] = -0.2
    elif fault == "sum":
        probs[2, 5] *= 2
    elif fault == "nan":
        probs[0, 3, 1] = np.nan
    else:
        probs = np.log(probs)
    with pytest.raises(ValueError, match=rf"^greedy_select\(\) {words}.*\. The method averages "
                       r"the candidates' probabilities \(Caruana et al\. 2004; paper 2\.3\), so "
                       r"each row must be values >= 0 summing to 1, each within 0\.001: for "
                       r"logits, pass their softmax over the last axis$"):
        hubensemble.greedy_select(probs, y)
    # float32 softmax rows, within the tolerance, are probabilities
    near = (rng.dirichlet(np.ones(4), size=(3, 6)) * (1 + 5e-4)).astype(np.float32)
    assert hubensemble.greedy_select(near, y, budget=2).size >= 1


@pytest.mark.parametrize("keyword, value, rule", [
    ("budget", True, "an integer >= 1"), ("budget", 2.5, "an integer >= 1"),
    ("budget", "3", "an integer >= 1"), ("seed", -1, "an integer in"),
    ("bootstrap", float("inf"), "a number > 0 and finite"),
    ("with_replacement", 1, "true or false")])
def test_greedy_select_checks_its_options_as_the_table(keyword, value, rule):
    """budget=True ran one pick and budget=2.5 two (int()); with_replacement=1 was taken."""
    probs, y = _probs()
    with pytest.raises(OptionError, match=rf"^{keyword} must be {rule}.*, got "):
        hubensemble.greedy_select(probs, y, **{keyword: value})


def test_greedy_select_takes_numpy_numbers():
    """numpy's integers are integers (numbers.Integral), as for the options table."""
    probs, y = _probs()
    plain = hubensemble.greedy_select(probs, y, budget=2, seed=1)
    numpy = hubensemble.greedy_select(probs, y.astype(np.uint8), budget=np.int64(2),
                                      seed=np.int32(1))
    assert numpy.indices == plain.indices and len(plain.indices) == 2


@pytest.mark.parametrize("keyword, value, shown", [
    ("costs", [1.0], "list of 1"), ("limits", {"gflops": 1.0}, "dict")])
def test_greedy_select_names_costs_and_limits(keyword, value, shown):
    probs, y = _probs()
    with pytest.raises(TypeError, match=rf"^greedy_select\(\) {keyword} must be .*, got {shown}"):
        hubensemble.greedy_select(probs, y, **{keyword: value})


@pytest.mark.parametrize("keyword, value, words", [
    ("corruptions", 3, "corruptions: unknown corruption 3; choose from gaussian_noise, "),
    ("corruptions", {"fog": 1}, r"corruptions: unknown corruption \{'fog': 1\}; choose "),
    ("corruptions", ["fog", 2], "corruptions: unknown corruption 'fog'; choose "),
    ("severities", 3, "severities must be a list of integers among 1, 2, 3, got 3$"),
    ("severities", "1,2", "severities must be a list of integers among 1, 2, 3, got '1,2'$"),
    ("severities", [True], r"severities must be a list .*, got \[True\]$")])
def test_evaluate_model_names_corruptions_and_severities(tmp_path, keyword, value, words):
    """corruptions=3 and severities=3 failed with "'int' object is not iterable", and
    severities=[True] ran severity 1; refused before any folder is read, corruptions=3 in
    fit's words (test_data_arrays' fit test)."""
    values = {"corruptions": True, keyword: value}
    with pytest.raises(OptionError, match=rf"^{words}"):
        hubensemble.evaluate_model(tmp_path / "none", None, **values)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keywords, words", [
    (dict(top_k=5, threshold=0.1), "top_k=5 or threshold=0.1, not both; leave the other out"),
    (dict(top_k=5, greedy=True), "top_k=5 or greedy=True, not both"),
    (dict(top_k=3, threshold=0.0, greedy=True), "top_k=3 or threshold=0.0 or greedy=True, "
                                                "not more than one; leave the others out")])
def test_run_rank_refuses_two_selection_rules_given(tmp_path, keywords, words):
    """run_rank(top_k=5, threshold=0.1) selected by the threshold alone, where fit and the
    command line refuse both: refused before its folder is made (not where fit passes its
    top_k default beside a threshold: test_data_arrays' threshold fits)."""
    with pytest.raises(OptionError, match="^choose one selection rule: " + re.escape(words)):
        hubensemble.run_rank(tmp_path / "run", [], None, **keywords)
    assert not (tmp_path / "run").exists()


def test_run_rank_checks_each_rule_before_the_pair(tmp_path):
    """As fit: top_k=0 beside a threshold is told top_k's own rule, not "choose one"."""
    with pytest.raises(OptionError, match=r"^top_k must be an integer >= 1, got 0"):
        hubensemble.run_rank(tmp_path / "run", [], None, top_k=0, threshold=0.1)


@pytest.mark.parametrize("lr, shown", [(float("inf"), "inf"), (float("nan"), "nan"),
                                       (10 ** 400, r"10000000… \(401 digits\)"), (0, "0"),
                                       (True, "True"), ("0.1", "'0.1'")])
def test_one_wording_of_a_number_above_0_and_finite(lr, shown):
    """TrainSpec(lr=inf) was told "must be a number > 0", TrainSpec's docstring and docs said
    "a finite number > 0", the options table and Limits "a number > 0 and finite"; lr=10**400
    (no float holds it) was taken. One wording, the table's (optionrecord.POSITIVE_FINITE)."""
    from hubensemble.cost.records import Limits
    from hubensemble.options import get
    from hubensemble.zoo.config import TrainSpec

    words = "a number > 0 and finite"
    assert get("max_gflops").allowed(none=False) == words
    with pytest.raises(ValueError, match=rf"^TrainSpec lr must be {words}, got {shown}$"):
        TrainSpec(examples=64, steps=2, lr=lr)
    with pytest.raises(ValueError, match=rf"^the gflops limit must be {words}, got {shown}$"):
        Limits(gflops=lr)
    assert TrainSpec(examples=64, steps=2, lr=1).lr == 1  # an int stays as written (zoo.json)


def test_a_selection_shows_its_ensemble_in_one_line():
    """greedy_select's result echoed the whole path's curve and every pick (~100 characters a
    pick); now its members, size, weights and validation objective, as Ranking's repr."""
    probs, y = _probs(m=4, n=40, c=3, seed=1)
    sel = hubensemble.greedy_select(probs, y, budget=15, with_replacement=True,
                                    size_rule="budget")
    shown = repr(sel)
    assert "\n" not in shown and len(shown) < 200, shown
    best = sel.curve[sel.size - 1]["ce"]
    assert shown.startswith(f"Selection(members={sel.members!r}, size={sel.size} of "
                            f"{len(sel.indices)} picks, weights={{"), shown
    assert shown.endswith(f", val ce {best:.4f})"), shown
    for i, w in sel.weights.items():
        assert f"{i}: {w:.3g}" in shown


def test_a_shipped_catalogue_named_without_its_extension_is_told_its_name():
    with pytest.raises(CatalogueError,
                       match=r"^no catalogue 'demo' ships with hubensemble \(did you mean "
                             r"'demo\.yaml'\?\); the shipped ones are "):
        hubensemble.shipped_catalogue("demo")


@pytest.mark.parametrize("args, name, shown", [
    ((3,), "config", "int 3"), ((None, "z"), "config", "NoneType None"),
    (("demo", 3), "out_dir", "int 3")])
def test_build_zoo_names_its_argument(tmp_path, args, name, shown):
    """build_zoo(3) was told "give an output folder (out_dir) for a zoo that is not a preset",
    build_zoo('demo', 3) failed in pathlib."""
    with pytest.raises(TypeError, match=rf"^build_zoo\(\) {name} must be .*, got {shown}"):
        hubensemble.build_zoo(*args)


@pytest.mark.parametrize("keywords, words", [
    (dict(input_size=3), r"^load_module\(\) input_size must be None \(the module's own size\) "
                         r"or \(height, width\), two integers; got int 3: write "
                         r"input_size=\(3, 3\)$"),
    (dict(input_size=(32, True)), r"input_size must be .*; got tuple of 2"),
    (dict(layer=3), r"^load_module\(\) layer must be a str or None, got int 3"),
    (dict(weights=5), r"^load_module\(\) weights must be a str or None \(or os\.PathLike"),
    (dict(input_sise=(32, 32)), r"^load_module\(\) got an unexpected keyword argument "
                                r"'input_sise' \(did you mean input_size\?\); its fields are ")])
def test_load_module_names_its_fields(tiny_module, keywords, words):
    """input_size=3 failed with "'int' object is not iterable", a mistyped field in locate()."""
    with pytest.raises(TypeError, match=words):
        hubensemble.load_module(tiny_module, **keywords)


@pytest.mark.parametrize("args, keywords, error, words", [
    ((None, "m"), {}, TypeError, r"^write_hub_module\(\) model must be a Keras model or layer, "
                                 r"got NoneType None; wrap a function in a keras\.Model first$"),
    (("model", None), {}, TypeError, r"^write_hub_module\(\) path must be the module folder's "
                                     r"path \(str or os\.PathLike\), got NoneType None; e\.g\. "
                                     r"path='modules/mine'$"),
    (("model", 3), {}, TypeError, r"^write_hub_module\(\) path must be .*, got int 3"),
    (("model", "m"), dict(input_size="ab"), TypeError,
     r"^write_hub_module\(\) input_size must be None \(any size\) or \(height, width\), two "
     r"integers; got str 'ab': write input_size=\(224, 224\)$"),
    (("model", "m"), dict(input_size=3), TypeError, r"got int 3: write input_size=\(3, 3\)$"),
    # One reading with the catalogue's (sizemeant): "32×32" was hinted (224, 224), and
    # "4000x4000" a size that would itself be refused.
    (("model", "m"), dict(input_size="32×32"), TypeError,
     r"got str '32×32': write input_size=\(32, 32\)$"),
    (("model", "m"), dict(input_size="4000x4000"), TypeError,
     r"got str '4000x4000', which reads as \(4000, 4000\), a side outside \[1, 2048\] "
     r"pixels: write input_size=\(224, 224\)$"),
    (("model", "m"), dict(input_size=0), TypeError,
     r"got int 0, which reads as \(0, 0\), a side outside \[1, 2048\] pixels: write "
     r"input_size=\(224, 224\)$"),
    (("model", "m"), dict(input_size=(3,)), TypeError, r"got tuple of 1 int \(3\): write "),
    (("model", "m"), dict(input_size=np.zeros((2, 2))), TypeError,
     r"got ndarray float64 \[2, 2\]: write "),
    (("model", "m"), dict(input_size=(0, 4)), ValueError,
     r"^write_hub_module\(\) input_size \(0, 4\) has a side outside \[1, 2048\] pixels")])
def test_write_hub_module_names_its_arguments(tmp_path, args, keywords, error, words):
    """write_hub_module(model, None) failed in os.fspath ("expected str, bytes or os.PathLike
    object, not NoneType"), input_size='ab' in TensorFlow's TensorShape ("Dimension value
    must be integer"), input_size=3 on "cannot unpack non-iterable int object", an array on
    "truth value of an array … is ambiguous", and (0, 4) wrote a module no image fits:
    refused now, as HubLayer's and load_module's input_size (one rule, `inputsize`), before
    anything is traced or written."""
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D()])
    args = tuple(model if a == "model" else str(tmp_path / a) if a == "m" else a for a in args)
    with pytest.raises(error, match=words):
        hubensemble.write_hub_module(*args, **keywords)
    assert os.listdir(tmp_path) == []


def _split_of(images, labels):
    from hubensemble.data import Split

    return Split(images, labels)


def _split():
    return _split_of(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("make, words", [
    (lambda: hubensemble.ModuleSpec(),
     r"^ModuleSpec\(\) needs name \(a str: the module's name in rankings and reports\) and "
     r"handle \(where the module lives: a TF Hub or Kaggle URL, keras:NAME, a local folder or "
     r"model file\); e\.g\. ModuleSpec\(name='bit-r50', handle='https://tfhub\.dev/google/bit/"
     r"m-r50x1/1'\)$"),
    (lambda: hubensemble.ModuleSpec("a"), r"^ModuleSpec\(\) needs handle \(where the module "),
    (lambda: hubensemble.Task(name="t"),
     r"^Task\(\) needs source \(a str: where the data came from, for people\), class_names \(a "
     r"list of str, one per class, label i naming class_names\[i\]\) and train \(a "
     r"hubensemble\.data\.Split\(images, labels\)\); e\.g\. Task\(name='mine', source='arrays', "
     r"class_names=\['cat', 'dog'\], train=Split\(x_train, y_train\)\)$"),
    (lambda: hubensemble.Task("t", "arrays", None, _split()),
     r"^Task class_names must be a list of str, one per class, got NoneType None; e\.g\. "
     r"class_names=\['cat', 'dog'\]$"),
    # a set has no order: label i named no class it could be told
    (lambda: hubensemble.Task("t", "arrays", {"a", "b"}, _split()),
     r"^Task class_names must be a list of str, one per class, got set "),
    (lambda: hubensemble.Task(None, "arrays", ["a", "b"], _split()),
     r"^Task name must be a str naming the task, got NoneType None; e\.g\. name='mine'$"),
    (lambda: hubensemble.Task("t", 3, ["a", "b"], _split()),
     r"^Task source must be a str: where the data came from, for people, got int 3; "),
    (lambda: _split_of(None, [0, 1]),
     r"^Split images must be an array \[N, H, W\] or \[N, H, W, C\], or a list of images, got "
     r"NoneType None; e\.g\. Split\(x_train, y_train\)$"),
    (lambda: _split_of(np.zeros((2, 8, 8, 3), np.uint8), "ab"),
     r"^Split labels must be an array \[N\] of integer class indices, got str 'ab'; "),
    # a mistyped keyword is still said as such first
    (lambda: hubensemble.Task(nmae="t"),
     r"^Task\(\) got an unexpected keyword argument 'nmae' \(did you mean name\?\)$")])
def test_records_made_in_python_name_a_field_left_out_or_of_another_type(make, words):
    """ModuleSpec() and Task(name=…) said Python's "__init__() missing 2 required positional
    arguments: 'name' and 'handle'" (neither the record nor what the fields take);
    Task(None, None, …) was made, and class_names=None failed on "'NoneType' object is not
    iterable" in the names' check; Split(None, …) said "Split images have shape []"."""
    with pytest.raises(TypeError, match=words):
        make()


@pytest.mark.parametrize("names", [iter(["a", "b"]), (n for n in "ab"), map(str, "ab")])
def test_a_task_takes_class_names_given_as_an_iterator_once(names):
    """Task(class_names=iter([...])) or a generator failed in the splits' check with Python's
    "object of type 'list_iterator' has no len()": the names' check had used it up (a
    new-user check). One pass is taken as a list. Fails before: that TypeError."""
    task = hubensemble.Task("t", "arrays", names, _split())
    assert task.class_names == ["a", "b"] and task.num_classes == 2


@pytest.mark.parametrize("call, words", [
    (lambda d: hubensemble.run_rank(d / "run", [], None, topk=5),
     r"^run_rank\(\) got an unexpected keyword argument 'topk' \(did you mean top_k\?\)$"),
    (lambda d: hubensemble.run_tune(d / "run", budegt=5),
     r"^run_tune\(\) got an unexpected keyword argument 'budegt' \(did you mean budget\?\)$"),
    (lambda d: hubensemble.evaluate_model(d / "export", None, corruption=True),
     r"^evaluate_model\(\) got an unexpected keyword argument 'corruption' \(did you mean "
     r"corruptions\?\)$"),
    (lambda d: hubensemble.export_ensemble(d / "run", zzz=1),
     r"^export_ensemble\(\) got an unexpected keyword argument 'zzz'; it takes run_dir, "
     r"out_dir, retrain_full, skip_missing, export_format, quantize, tflite_size, student, "
     r"train_batch_size, strategy, task, cache_dir, progress$")])
def test_a_mistyped_keyword_of_a_stage_function_names_the_one_meant(tmp_path, call, words):
    """Python 3.11 said "got an unexpected keyword argument 'budegt'" and no more, where fit
    and the command line name the one meant (git's rule, text.closest_name)."""
    with pytest.raises(TypeError, match=words):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, got", [(None, "None"), (3, "3"), ("gpu", "'gpu'")])
def test_get_strategy_says_what_name_it_takes(name, got):
    """get_strategy(None) said "unknown strategy None", not what it takes: now the --strategy
    option's own words, its choices from the options table."""
    from hubensemble.options import OptionError, get

    with pytest.raises(OptionError) as caught:
        hubensemble.get_strategy(name)
    assert str(caught.value).startswith(
        f"get_strategy() name must be one of {', '.join(get('strategy').choices)}, got {got}")


@pytest.mark.parametrize("value, said", [
    ("abc", '"abc", which is not a pair of positive integers'),
    ([32, True], '[32, true], which is not a pair of positive integers'),
    (float("nan"), "NaN, which is not a pair of positive integers"),
    ([32] * 40, "[" + ", ".join(["32"] * 24) + ", ..."),
])
def test_a_damaged_input_size_in_run_json_is_told_as_json(tmp_path, value, said):
    """run.json's catalogue entry with a damaged input_size was told in a catalogue file's
    YAML and Python's repr ("'abc' is not a pair …; write input_size: [224, 224] … instead"):
    now run.json, the field and its value as the file holds them."""
    import json

    from hubensemble.rundir import Run
    from hubensemble.runspecs import module_spec

    entry = {"name": "a", "handle": "/zoo/a", "input_size": value}
    (tmp_path / "run.json").write_text(json.dumps({"modules": {"a": entry}}))
    with pytest.raises(RunError) as caught:
        module_spec(Run(tmp_path), "a")
    assert str(caught.value).startswith(
        f"{tmp_path / 'run.json'}: the catalogue entry of module 'a' is damaged (its "
        f'"input_size" is {said}')
    assert "write input_size" not in str(caught.value)


def _export_in_a_run(tmp_path):
    """A folder "run a" holding run.json and an export's files at run a/export (those the
    refusals below read: files only, no model)."""
    import json

    run = tmp_path / "run a"
    (run / "export" / "assets").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "export" / "assets" / "hubensemble.json").write_text(
        json.dumps({"format": "hubensemble-export", "format_version": 1}))
    (run / "export" / "saved_model.pb").write_bytes(b"")
    return run


def test_suggested_folders_with_a_space_are_one_shell_word(tmp_path, in_process, monkeypatch):
    """`evaluate --model "run a"` said "pass run a/export", `evaluate --run "run a/export"`
    "unrecognized arguments: --run run a/export", and `rank --out "run a/export"` "holds files
    or folders (assets) and no run": a command pasted from them split "run a" in two, and the
    last did not say it was the run's export."""
    import shlex

    run = _export_in_a_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process("evaluate", "--model", "run a", "--data", "sklearn:digits")
    assert code != 0 and err.rstrip().endswith(
        f"it is a run folder: pass --model {shlex.quote(str(run / 'export'))}"), err
    code, _, err = in_process("evaluate", "--run", "run a/export")
    assert code != 0 and "unrecognized arguments: --run 'run a/export' (" in err, err
    code, _, err = in_process("rank", "--catalogue", hubensemble.shipped_catalogue("demo.yaml"),
                              "--data", "sklearn:digits",
                              "--out", "run a/export")
    assert code != 0 and err.rstrip().endswith(
        "run a/export is a hubensemble export, not a run folder: the run's files would mix "
        f"with the export's; pass a new or empty --out folder, or --out {shlex.quote(str(run))}, "
        "the run it was exported from"), err
    with pytest.raises(RunError, match=re.escape(f"pass model_dir={str(run / 'export')!r}")):
        hubensemble.predict(run, ["x.png"])
    with pytest.raises(RunError, match=re.escape(f"or out_dir={str(run)!r}, the run it was")):
        hubensemble.run_rank(run / "export", [], None)
    assert sorted(p.name for p in run.iterdir()) == ["export", "run.json"]
    assert sorted(p.name for p in (run / "export").iterdir()) == ["assets", "saved_model.pb"]


@pytest.mark.parametrize("flag, said", [("--out", "--out {}"), ("out", "out={!r}")])
def test_a_folder_beside_the_data_is_suggested_as_one_word(tmp_path, flag, said):
    """`--out "my imgs"` on `--data "folder:my imgs"` was told "e.g. --out /abs/my imgs-run",
    two words to a shell (and to Python, no keyword's form)."""
    import shlex

    from hubensemble.data.specs import check_outside_data

    data = tmp_path / "my imgs"
    beside = str(tmp_path / "my imgs-run")
    with pytest.raises(hubensemble.errors.DataError) as caught:
        check_outside_data(f"folder:{data}", {flag: data})
    assert str(caught.value).endswith(
        "e.g. " + said.format(shlex.quote(beside) if flag == "--out" else beside))


def _two_image_task():
    from hubensemble.data.task import Split

    return hubensemble.Task(name="t", source="arrays", class_names=["a", "b"],
                            train=Split(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1])))


@pytest.mark.parametrize("call, words", [
    (lambda spec: hubensemble.build_classifier("/zoo/a", 3),
     r"^build_classifier\(\) spec must be a ModuleSpec \(a catalogue entry\), got str "
     r"'/zoo/a'; e\.g\. spec=hubensemble\.load_catalogue\(PATH\)\[0\]$"),
    (lambda spec: hubensemble.build_classifier(spec, "3"),
     r"^build_classifier\(\) num_classes must be an integer >= 2, got str '3'$"),
    (lambda spec: hubensemble.fit_member("/zoo/a", None, None, profile="quick"),
     r"^fit_member\(\) spec must be a ModuleSpec \(a catalogue entry\), got str '/zoo/a'; "
     r"e\.g\. spec=hubensemble\.load_catalogue\(PATH\)\[0\]$"),
    (lambda spec: hubensemble.fit_member(spec, "sklearn:digits", None, profile="quick"),
     r"^fit_member\(\) task must be a Task, got str 'sklearn:digits'; e\.g\. "
     r"task=hubensemble\.load_task\(SPEC\)$"),
    (lambda spec: hubensemble.fit_member(spec, _two_image_task(), None, profile="quick"),
     r"^fit_member\(\) hparams must be a trial's hyperparameters \(hubensemble\.hyperrule\."
     r"HParams\), got NoneType None; e\.g\. hparams=hubensemble\.candidate\.read_candidate\("
     r"'RUN/candidates', 'TRIAL'\)\.read_hparams\(\)$")])
def test_build_classifier_and_fit_member_name_a_wrong_argument(call, words):
    """build_classifier('/zoo/a', 3) was an AttributeError in the HubLayer ("'str' object
    has no attribute 'handle'"), fit_member(spec, task, None) one at "hparams.kind"."""
    spec = hubensemble.ModuleSpec(name="a", handle="/zoo/a")
    with pytest.raises(TypeError, match=words):
        call(spec)


def test_fit_member_s_way_to_its_hparams_is_a_call_a_python_user_can_make(tmp_path):
    """fit_member(spec, task, None) named `HParams` and `Candidate.read_hparams()`, neither in
    `hubensemble.__all__` nor importable by those names: its example, run as written on a
    trial's folder (RUN and TRIAL filled in), gives what fit_member takes. Fails before: no
    example."""
    import re

    from hubensemble import candidate
    from hubensemble.hyperrule import PROFILES, HParams
    from hubensemble.sweepplan import finetune_hparams

    spec = hubensemble.ModuleSpec(name="a", handle="/zoo/a")
    with pytest.raises(TypeError) as caught:
        hubensemble.fit_member(spec, _two_image_task(), None, profile="quick")
    example = re.search(r"e\.g\. hparams=(.*)$", str(caught.value)).group(1)
    hparams = finetune_hparams({"lr": 0.01, "steps": 500, "weight_decay": 1e-4, "dropout": 0.0},
                               PROFILES["quick"], batchnorm="train", seed=3)
    candidate.write_candidate(tmp_path / "candidates", {
        "trial": "t", "module": "a", "status": "ok", "hparams": hparams.to_json()},
        val_probs=np.full((2, 2), 0.5))
    read = eval(example.replace("RUN", str(tmp_path)).replace("TRIAL", "t"),
                {"hubensemble": __import__("hubensemble.candidate")})
    assert isinstance(read, HParams) and read == hparams


def test_greedy_selects_unknown_objective_lists_the_objectives_as_words():
    """greedy_select(objective='nll') listed them as a Python tuple, "('ce', 'accuracy')",
    where its size rules are words ("one-se, paper, budget")."""
    from hubensemble.greedy import OBJECTIVES

    with pytest.raises(ValueError) as caught:
        hubensemble.greedy_select(np.full((2, 3, 2), 0.5), np.array([0, 1, 0]), objective="nll")
    assert str(caught.value) == f"unknown objective 'nll'; choose one of {', '.join(OBJECTIVES)}"
    assert "(" not in str(caught.value)


@pytest.mark.parametrize("call, words", [
    (lambda d, s: hubensemble.run_rank(s, d / "run", None),
     "run_rank() out_dir must be a folder path (str or os.PathLike), got list of 2 ModuleSpec "
     "('alpha', 'beta'); e.g. out_dir="),
    (lambda d, s: hubensemble.build_classifier(s, 3),
     "build_classifier() spec must be a ModuleSpec (a catalogue entry), got list of 2 "
     "ModuleSpec ('alpha', 'beta'); e.g. spec="),
    (lambda d, s: hubensemble.load_catalogues([d / "c.yaml", s[0]]),
     "load_catalogues() paths[1] must be a catalogue YAML path (str or os.PathLike), got "
     "ModuleSpec 'alpha'; e.g. paths[1]="),
    (lambda d, s: hubensemble.write_report((d / "a", d / "b")),
     "write_report() run_dir must be a folder path (str or os.PathLike), got tuple of 2 "
     "PosixPath ("),
])
def test_a_refused_value_says_its_type_and_count_readably(tmp_path, call, words):
    """Catalogue entries where a folder goes were told "got list of 2 (ModuleSpec
    ModuleSpec(na...ne, source=''), ModuleSpec ModuleSpec(na...ne, source=''))": each by
    its name, the type said once when the items share it (`refused.described`). Fails
    before: the repr's cut words."""
    from hubensemble.catalogue import ModuleSpec

    specs = [ModuleSpec(name="alpha", handle="/no/a"), ModuleSpec(name="beta", handle="/no/b")]
    with pytest.raises(TypeError) as caught:
        call(tmp_path, specs)
    assert str(caught.value).startswith(words), str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_run_rank_says_its_out_dir_is_the_tasks_data_folder(tmp_path, monkeypatch):
    """run_rank(out_dir=<the data folder>) was told "… holds files or folders (a, b) and no
    run", where `rank --out` says it is the data folder; a folder inside it was ranked into
    (a class of the data from then on), and fit of that Task was refused by rank, in rank's
    words, its run folder made. Refused, naming the task's data, nothing made. Fails before:
    the RunError, and no error at all inside."""
    from PIL import Image

    from hubensemble.errors import DataError

    data = tmp_path / "imgs"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(data / name / f"{i}.png")
    task = hubensemble.load_task(f"folder:{data}", progress=False, min_per_class=2)
    for out, what in ((data, "is the data folder"), (data / "run", "is inside the data folder")):
        with pytest.raises(DataError) as caught:
            hubensemble.run_rank(out, [], task)
        assert str(caught.value).startswith(
            f"out_dir {out} {what} {data} (the task's data, folder:{data}): what is written "
            "there would be read as a class of the data; pass an out_dir folder outside it, "
            "e.g. out_dir="), str(caught.value)
    # fit of such a Task: its own words ("out"), before its run folder is made
    with pytest.raises(DataError, match=re.escape(
            f"out {data / 'run'} is inside the data folder {data} (the Task's data, ")):
        hubensemble.fit([hubensemble.ModuleSpec(name="m", handle=str(tmp_path / "m"))], task,
                        data / "run", progress=False)
    assert sorted(p.name for p in data.iterdir()) == ["a", "b"]


def test_run_rank_names_an_unknown_keyword_before_a_rule_clash(tmp_path):
    """run_rank(…, top_k=3, threshold=0.5, mertic="x") was told the rule clash first: the
    keyword it does not take goes first. Fails before: "choose one selection rule"."""
    with pytest.raises(TypeError, match=r"^run_rank\(\) got an unexpected keyword argument "
                                        r"'mertic' \(did you mean metric\?\)$"):
        hubensemble.run_rank(tmp_path / "run", [], None, top_k=3, threshold=0.5, mertic="x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, export", [("run a/export", None), ("run a/new", None),
                                         ("run a/new", "elsewhere")])
def test_fit_names_its_out_inside_another_run(tmp_path, monkeypatch, out, export):
    """fit(out="run a/export") of a run with no export yet was told "run a/export/export is
    inside the run folder …" (its export's path, not the folder it was given), and with an
    export elsewhere it ran a run inside the other run's folder. Fails before: those words,
    and no error."""
    run = tmp_path / "run a"
    run.mkdir()
    (run / "run.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError) as caught:
        hubensemble.fit([hubensemble.ModuleSpec(name="m", handle=str(tmp_path / "m"))],
                        "sklearn:digits", out, export=export and str(tmp_path / export),
                        progress=False)
    assert str(caught.value) == (
        f"out {out} is inside the run folder {os.path.realpath(run)} of another run (its "
        "export, or files its commands own): choose another out folder outside it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run a"]
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]


def test_fit_takes_the_command_lines_data_flags_as_keywords_and_a_dict(tmp_path):
    """fit(…, flip=False) was "unknown option flip" and data_args={"flip": False} was refused
    naming an internal module (a new user, stop 70): the data options are fit's keywords
    (`--no-flip`: flip=False, `--data-seed`: data_seed), a dict is a DataArgs, and DataArgs
    is hubensemble's. Each reaches the load: run.json records the load's options (the fit
    then stops at its module, which is not there)."""
    import json

    import hubensemble
    from hubensemble.errors import ModuleLoadError

    specs = [hubensemble.ModuleSpec(name="m", handle=str(tmp_path / "gone"))]
    for n, keywords in enumerate(({"flip": False, "data_seed": 3},
                                  {"data_args": {"flip": False, "data_seed": 3}},
                                  {"data_args": {"flip": False, "seed": 3}},
                                  {"data_args": hubensemble.DataArgs("sklearn:digits", seed=3),
                                   "flip": False})):
        out = tmp_path / f"run{n}"
        with pytest.raises(ModuleLoadError):
            hubensemble.fit(specs, "sklearn:digits", out, progress=False, **keywords)
        args = json.loads((out / "run.json").read_text())["data"]["args"]
        assert (args["flip"], args["seed"]) == (False, 3), (keywords, args)


def test_every_data_option_of_the_command_line_is_a_keyword_of_fit():
    """The keywords are DataArgs' fields that are data options (declared once, in the table):
    every data flag of `hubensemble fit` is one, and none is a FitOptions field's name
    (DataArgs' `seed` is `data_seed`: fit's own seed is the sweep's)."""
    import dataclasses

    from hubensemble import options
    from hubensemble.dataargs import DataArgs, data_keywords
    from hubensemble.fitoptions import FitOptions

    keywords = data_keywords()
    fit_flags = {o.name for o in options.options_for(record="data") if "fit" in o.commands}
    assert fit_flags <= set(keywords), fit_flags - set(keywords)
    assert not set(keywords) & {f.name for f in dataclasses.fields(FitOptions)}
    held = {f.name for f in dataclasses.fields(DataArgs)} - {"spec", "label_fn", "reloadable"}
    assert set(keywords.values()) == held


@pytest.mark.parametrize("keywords, words", [
    ({"data_args": {"flp": False}}, "fit() data_args has no field 'flp' (did you mean flip?)"),
    ({"flp": False}, "fit() got unknown option flp (did you mean flip?)"),
    ({"data_seed": 3, "data_args": {"seed": 4}},
     "fit() got data_seed=3 and data_args' seed=4; give each data option once"),
    ({"data_args": 3}, "fit() data_args must be a DataArgs, a dict of its fields or None, got "
                       "int 3; pass the data options as keywords, fit(…, flip=False, "
                       "data_seed=3), or data_args={'flip': False}"),
])
def test_fits_data_options_refused_before_the_run_folder(tmp_path, keywords, words):
    import hubensemble

    out = tmp_path / "run"
    with pytest.raises(TypeError) as refused:
        hubensemble.fit([hubensemble.ModuleSpec(name="m", handle=str(tmp_path / "m"))],
                        "sklearn:digits", out, **keywords)
    assert str(refused.value).startswith(words), str(refused.value)
    assert not out.exists()


def test_fit_of_a_task_says_load_task_takes_the_data_options(tmp_path):
    import hubensemble

    task = hubensemble.load_task("sklearn:digits")
    with pytest.raises(TypeError, match=r"^fit\(\) flip=False: data options apply as fit loads "
                                        r"the data from a spec; data is a Task, loaded already: "
                                        r"pass them to load_task\(spec, flip=False\)"):
        hubensemble.fit([hubensemble.ModuleSpec(name="m", handle=str(tmp_path / "m"))], task,
                        tmp_path / "run", flip=False)
    assert not (tmp_path / "run").exists()
