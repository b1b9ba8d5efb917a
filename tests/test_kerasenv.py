"""The Keras configuration a user already carries: KERAS_BACKEND, keras.json, a notebook's
global Keras settings (hubensemble.kerasenv)."""

import json
import os
import subprocess
import sys

import pytest

from hubensemble import kerasenv


def _python(code, env, timeout=300):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _home_with_backend(tmp_path, backend):
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    (home / ".keras" / "keras.json").write_text(json.dumps({"backend": backend}))
    return home


@pytest.fixture
def plain_env(tmp_path):
    """os.environ without KERAS_BACKEND / KERAS_HOME, HOME a new folder (no keras.json)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KERAS_HOME")}
    env["HOME"] = str(tmp_path / "plainhome")
    os.makedirs(env["HOME"], exist_ok=True)
    env["HUBENSEMBLE_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.mark.parametrize("where", ["variable", "keras.json"])
def test_python_on_another_keras_backend_is_refused_naming_where_it_was_set(
        tmp_path, plain_env, where):
    """KERAS_BACKEND=jax (or keras.json's "backend": "jax") with jax not installed: importing
    hubensemble's Keras parts failed with Keras' `ModuleNotFoundError: No module named
    'jax'` traceback; it is a HubensembleError naming the variable or file and the way on,
    before TensorFlow or Keras loads."""
    env = dict(plain_env)
    if where == "variable":
        env["KERAS_BACKEND"] = "jax"
        named = "KERAS_BACKEND=jax"
    else:
        home = _home_with_backend(tmp_path, "jax")
        env["HOME"] = str(home)
        named = f'"backend": "jax" in {home}/.keras/keras.json'
    code = ("import sys\nfrom hubensemble.errors import HubensembleError\ntry:\n"
            "    from hubensemble.hub import HubLayer\nexcept HubensembleError as e:\n"
            "    print(e)\n    print('keras' in sys.modules, 'tensorflow' in sys.modules)\n")
    out = _python(code, env)
    assert out.returncode == 0, out.stderr[-3000:]
    said, loaded = out.stdout.strip().splitlines()
    assert said.startswith(f"{named} would load Keras on the 'jax' backend, and hubensemble "
                           "runs Keras on TensorFlow only"), said
    assert "os.environ['KERAS_BACKEND'] = 'tensorflow' before the first `import keras`" in said
    assert loaded == "False False"


def test_fit_on_another_keras_backend_is_refused_before_it_reads_the_data(tmp_path, plain_env):
    """fit read its data (a folder of photos: minutes) and said its summary before the first
    Keras import refused the backend, which every fit reaches (even one of a finished run);
    it is refused first now, nothing read, no run folder made."""
    out_dir = tmp_path / "run"
    code = ("import sys\nimport hubensemble\nfrom hubensemble.errors import HubensembleError\n"
            "try:\n    hubensemble.fit(catalogue=hubensemble.shipped_catalogue('demo.yaml'), "
            f"data='sklearn:digits', out={str(out_dir)!r})\n"
            "except HubensembleError as e:\n    print(str(e)[:40])\n"
            "print('sklearn' in sys.modules, 'keras' in sys.modules)\n")
    out = _python(code, dict(plain_env, KERAS_BACKEND="jax"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines() == [
        "KERAS_BACKEND=jax would load Keras on th", "False False"], out.stdout
    assert "Task 'digits'" not in out.stderr, out.stderr
    assert not out_dir.exists()


def test_the_tensorflow_only_parts_work_whatever_keras_backend(plain_env):
    """Decoding images with TensorFlow (and `predict`: a SavedModel, no Keras) needs no
    Keras: it works with KERAS_BACKEND=jax as it did; the Keras parts are refused after."""
    code = ("import io, sys\nimport numpy as np\nfrom PIL import Image\n"
            "from hubensemble.data.decode import decode_bytes\n"
            "from hubensemble.errors import HubensembleError\n"
            "buf = io.BytesIO()\nImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, 'PNG')\n"
            "decoded = decode_bytes(buf.getvalue())\n"
            "print(type(decoded).__name__, 'tensorflow' in sys.modules)\ntry:\n"
            "    from hubensemble.tune import run_tune\nexcept HubensembleError as e:\n"
            "    print(str(e)[:40])\n")
    out = _python(code, dict(plain_env, KERAS_BACKEND="jax"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-2:] == [
        "Decoded True", "KERAS_BACKEND=jax would load Keras on th"], out.stdout


def test_a_keras_already_imported_on_tensorflow_is_kept_whatever_the_variable_says_later(
        plain_env):
    """What counts once Keras is imported is its backend, not a KERAS_BACKEND set after."""
    code = ("import os, keras\nos.environ['KERAS_BACKEND'] = 'jax'\n"
            "from hubensemble.hub import HubLayer\nprint(keras.config.backend())\n")
    out = _python(code, plain_env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "tensorflow"


def test_the_refusal_of_a_keras_imported_on_another_backend_says_to_restart():
    """A Keras imported on jax (jax is not installed here: the words, by the pure rule)."""
    words = kerasenv.backend_refusal("jax", ("jax", "KERAS_BACKEND=jax"))
    assert words.startswith("Keras in this process runs on the 'jax' backend "
                            "(KERAS_BACKEND=jax), and hubensemble runs Keras on TensorFlow "
                            "only"), words
    assert "restart the notebook's kernel" in words
    assert kerasenv.backend_refusal("tensorflow", ("jax", "KERAS_BACKEND=jax")) is None
    assert kerasenv.backend_refusal(None, ("tensorflow", "Keras' default")) is None


def test_configured_backend_follows_keras_rule(tmp_path):
    home = _home_with_backend(tmp_path, "torch")
    assert kerasenv.configured_backend({"HOME": str(home)})[0] == "tensorflow"  # not ~ here
    keras_home = home / ".keras"
    env = {"KERAS_HOME": str(keras_home)}
    assert kerasenv.configured_backend(env) == (
        "torch", f'"backend": "torch" in {keras_home}/keras.json')
    assert kerasenv.configured_backend(dict(env, KERAS_BACKEND="jax"))[0] == "jax"
    assert kerasenv.configured_backend(dict(env, KERAS_BACKEND=""))[0] == "torch"
    (keras_home / "keras.json").write_text("{not json")
    assert kerasenv.configured_backend(env) == ("tensorflow", "Keras' default")
    # Keras reads it with open() and json.load (fileio.read_json's rule): a byte-order mark
    # is not JSON to it, so its backend is Keras' default, not the one after the mark.
    (keras_home / "keras.json").write_bytes(b'\xef\xbb\xbf{"backend": "torch"}')
    assert kerasenv.configured_backend(env) == ("tensorflow", "Keras' default")


def test_the_command_line_runs_keras_on_tensorflow_whatever_the_backend_says(
        tmp_path, plain_env, tiny_module):
    """`KERAS_BACKEND=jax hubensemble rank …` (and keras.json's jax) called every module of
    the catalogue broken ("ModuleNotFoundError: No module named 'jax'", exit 1); the command
    line sets the TensorFlow backend for its own process and says so once in RUN/log.txt."""
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: m, handle: {tiny_module}}}\n")
    env = dict(plain_env, KERAS_BACKEND="jax",
               HOME=str(_home_with_backend(tmp_path, "torch")))
    out = subprocess.run([sys.executable, "-m", "hubensemble", "rank", "--catalogue", str(cat),
                          "--data", "sklearn:digits", "--profile", "quick", "--out",
                          str(tmp_path / "run"), "-q"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "jax" not in out.stderr
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("KERAS_BACKEND=jax names Keras' 'jax' backend: the command line runs "
                     "Keras on TensorFlow (KERAS_BACKEND=tensorflow for its own process)") == 1


def test_stage_settings_set_keras_defaults_inside_and_give_the_callers_back():
    """Keras' global floatx, data format, dtype policy and fit caps, and TensorFlow's
    run_functions_eagerly, as a notebook leaves them: Keras' defaults inside a stage (nested
    blocks too), the caller's after."""
    import keras
    import tensorflow as tf

    # The fit caps (keras.config.max_epochs / max_steps_per_epoch) came with Keras 3.4;
    # setup.cfg allows 3.3, where kerasenv skips them, and so does this test.
    caps = hasattr(keras.config, "max_epochs")

    def now():
        fit_caps = ((keras.config.max_epochs(), keras.config.max_steps_per_epoch())
                    if caps else ())
        return (keras.config.floatx(), keras.config.image_data_format(),
                keras.config.dtype_policy().name, *fit_caps,
                tf.config.functions_run_eagerly())

    def with_caps(floatx, data_format, policy, epochs, steps, eagerly):
        return (floatx, data_format, policy, *((epochs, steps) if caps else ()), eagerly)

    defaults = with_caps("float32", "channels_last", "float32", None, None, False)
    assert now() == defaults
    callers = with_caps("float64", "channels_first", "mixed_float16", 1, 2, True)
    keras.config.set_floatx("float64")
    keras.config.set_image_data_format("channels_first")
    keras.mixed_precision.set_global_policy("mixed_float16")
    if caps:
        keras.config.set_max_epochs(1)
        keras.config.set_max_steps_per_epoch(2)
    tf.config.run_functions_eagerly(True)
    try:
        with kerasenv.stage_settings():
            assert now() == defaults
            with kerasenv.stage_settings():
                assert now() == defaults
            assert now() == defaults
        assert now() == callers
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_image_data_format("channels_last")
        keras.mixed_precision.set_global_policy("float32")
        if caps:
            keras.config.set_max_epochs(None)
            keras.config.set_max_steps_per_epoch(None)
        tf.config.run_functions_eagerly(False)
    assert now() == defaults


def test_a_stopped_first_import_of_tensorflow_is_said_on_the_next_call(plain_env):
    """A Ctrl-C (a notebook's stop button) during hubensemble's first import of TensorFlow
    can leave it half-imported: the next call failed deep inside TensorFlow ("ValueError:
    Name tf.RaggedTensorSpec has already been registered …", measured with the stop at the
    import of tensorflow.python.ops.array_grad; "KeyError: Registering two gradient with
    name 'ReadVariableOp'!" for a Ctrl-C 4.5 s in). Now the next call says TensorFlow is
    half-imported and to restart Python. The stop is made at that chosen point by an import
    hook, in a fresh process."""
    code = """if True:
        import sys
        from hubensemble.errors import HubensembleError
        class Stop:
            fired = False
            def find_spec(self, name, path=None, target=None):
                if name == "tensorflow.python.ops.array_grad" and not Stop.fired:
                    Stop.fired = True
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, Stop())
        from hubensemble import _tf
        try:
            _tf.import_tensorflow()
        except KeyboardInterrupt:
            print("stopped")
        for again in range(2):
            try:
                from hubensemble._tf import keras
            except HubensembleError as e:
                print("refused:", e)
    """
    done = _python(code, plain_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "stopped" and len(lines) == 3, done.stdout
    for line in lines[1:]:
        assert line.startswith("refused: tensorflow is half-imported in this Python process")
        assert "restart Python (a notebook's kernel) and run the call again" in line
