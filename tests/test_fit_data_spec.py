"""fit loads its `data`; a `data_args` naming other data (a DataArgs' spec, a dict's "spec")
was dropped without a word, and the run trained on `data` (a new user, stop 70:
`fit(data="folder:imgs", data_args=DataArgs("folder:imgs2", flip=False))` finished on imgs).
Refused before anything is read or written."""

import pytest

import hubensemble
import hubensemble.fitcall
from hubensemble import DataArgs


@pytest.mark.parametrize("data_args", [DataArgs("folder:/nowhere/imgs2", flip=False),
                                       {"spec": "folder:/nowhere/imgs2"}])
def test_fit_refuses_data_args_of_other_data(tmp_path, data_args):
    # Fails before: the fit ran on sklearn:digits (or failed later, on other grounds).
    with pytest.raises(TypeError) as err:
        hubensemble.fit("no-catalogue.yaml", "sklearn:digits", tmp_path / "run",
                        data_args=data_args)
    assert str(err.value) == ("fit() got data='sklearn:digits' and data_args' spec="
                              "'folder:/nowhere/imgs2'; fit loads data: give the data once, as "
                              "data='folder:/nowhere/imgs2' or with data_args' spec equal to it")
    assert not (tmp_path / "run").exists()


def test_fit_takes_data_args_of_its_own_data(tmp_path):
    args = hubensemble.fitcall.fit_data_args("sklearn:digits",
                                             DataArgs("sklearn:digits", flip=False), {})
    assert (args.spec, args.flip) == ("sklearn:digits", False)
