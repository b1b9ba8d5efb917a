"""Handles: what a refused handle is told to write instead (hubensemble.handles)."""

import pytest

from hubensemble.handles import HandleFormError, check_handle_form

OWN = "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector"


@pytest.mark.parametrize("handle, own", [
    (OWN + "?tf-hub-format=compressed", OWN),
    (OWN, OWN),
    (OWN + "/", OWN),
    ("https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/"
     "100-224-feature-vector?tf-hub-format=compressed", OWN),
    ("https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/variations/"
     "100-224-feature-vector/versions", OWN),
    ("kaggle:google/mobilenet-v2/tensorFlow2/100-224-feature-vector",
     "kaggle:google/mobilenet-v2/tensorFlow2/100-224-feature-vector"),
])
def test_an_unversioned_kaggle_handle_is_told_its_own_model_with_a_version(handle, own):
    """A Kaggle handle without its version (a download link copied with
    ?tf-hub-format=compressed, or the model page's URL) was told to write google/bit's
    m-r50x1, another model. It is told its own model with a VERSION (kagglehandles.kaggle_way_on).
    Fails before: the bit example for each."""
    with pytest.raises(HandleFormError) as err:
        check_handle_form(handle)
    assert str(err.value) == (
        f"{handle!r} is not a Kaggle Models handle with a version; write {own}/VERSION "
        f"(OWNER/MODEL/FRAMEWORK/VARIATION/VERSION: its version, e.g. {own}/1; the model's "
        "page on kaggle.com lists them) instead")
    check_handle_form(own + "/1")  # the example is a handle that passes


def test_a_kaggle_handle_too_short_to_name_a_model_keeps_the_general_example():
    with pytest.raises(HandleFormError) as err:
        check_handle_form("kaggle:google/mobilenet-v2")
    assert str(err.value).endswith(
        "write https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1 or "
        "kaggle:google/bit/tensorFlow2/m-r50x1/1 (OWNER/MODEL/FRAMEWORK/VARIATION/VERSION) "
        "instead"), err.value


@pytest.mark.parametrize("query", ["TF-HUB-FORMAT=compressed", "Tf-Hub-Format=compressed",
                                   "sig=x&TF-HUB-FORMAT=compressed"])
def test_the_format_query_is_dropped_whatever_its_keys_case(query):
    """``?TF-HUB-FORMAT=compressed`` was kept in the stored handle (and the URL resolve()
    asked for) where ``?tf-hub-format=compressed`` is dropped: tensorflow_hub then added its
    own, so the server was asked for the format twice. Fails before: each upper-case key."""
    from hubensemble.formatquery import without_format_query
    from hubensemble.handles import stored_handle

    url = "http://127.0.0.1:8000/m.tar.gz"
    kept = url + ("?sig=x" if query.startswith("sig=") else "")
    assert without_format_query(f"{url}?{query}") == kept
    assert stored_handle(f"{url}?{query}", "/") == kept
