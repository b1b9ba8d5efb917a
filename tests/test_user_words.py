"""Words a user bringing their own models read: what a refused budget cannot hold, and the
--budget help's rule for the grouped sweeps."""
import contextlib
import os
import re

import pytest

from hubensemble import sweeps
from hubensemble.errors import HubensembleError


@pytest.mark.parametrize("sweep, group, groups", [
    ("default", "module", "modules"), ("probe", "module", "modules"),
    ("aug", "augmentation family", "augmentation families")])
def test_refused_budget_says_one_what(sweep, group, groups):
    # "budget 2 cannot hold one" did not say one what until its end, "(one: one module's 4
    # trials; …)": said where it is refused.
    with pytest.raises(HubensembleError) as e:
        sweeps.check_budget(sweep, 2)
    said = str(e.value)
    assert (f"budget 2 cannot hold one {group}'s 4 trials: pass budget=4 or more (K {groups} "
            "need 4×K), or a sweep of single trials (seeds, hyper, combined)") in said, said
    sweeps.check_budget(sweep, 4)  # the real rule: 4 holds one group
    sweeps.check_budget("hyper", 1)  # single trials: any budget


def test_budget_help_says_grouped_sweeps_need_four(in_process):
    code, out, err = in_process("fit", "--help")
    assert code == 0, err
    help_text = " ".join(out.split())
    budget = re.search(r"--budget L (.*?) --modules", help_text).group(1)
    assert "the default and probe sweeps run 4 trials per module" in budget, budget
    assert "so they need 4 or more (4×K for K modules)" in budget, budget


def test_a_probe_trials_start_is_logged_in_a_probes_terms(caplog):
    # "lr=0.0, steps=1000, momentum=0.0" read as a fine-tune that never moved: a probe's
    # settings are its L2 strength and its solver's iteration limit.
    import logging

    from hubensemble.hyperrule import HParams
    from hubensemble.sweepplan import PlanEntry
    from hubensemble.tune.train import log_trial_start

    config = sweeps.probe_sweep()[1]
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.train"):
        log_trial_start(PlanEntry(1, "probe-0001-m", "m", HParams(**config)), 4)
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (f"trial 2/4 m starts: probe-0001-m (kind=\"probe\", l2_strength="
                    f"{config['weight_decay']}, lbfgs_max_iterations={sweeps.PROBE_MAX_ITER}; "
                    "a logistic regression on the module's frozen embeddings)"), line
    assert "lr=" not in line and "momentum=" not in line


@contextlib.contextmanager
def _archive_served(tmp_path, module_dir, monkeypatch):
    """(the URL of `module_dir` as a .tar.gz a local http.server on 127.0.0.1 serves, the
    list of request paths it was asked), TFHUB_CACHE_DIR in `tmp_path`."""
    import http.server
    import io
    import tarfile
    import threading

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(os.listdir(module_dir)):
            tar.add(os.path.join(module_dir, name), arcname=name)
    body, asked = buf.getvalue(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub"))
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/m.tar.gz", asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_archive_urls_tf_hub_format_query_is_sent_once(tmp_path, tiny_module, monkeypatch):
    # A handle copied with ?tf-hub-format=compressed was fetched as
    # "?tf-hub-format=compressed&tf-hub-format=compressed" (tensorflow_hub adds the query to
    # every URL): the catalogue stores it without, so the server is asked for it once.
    from hubensemble.catalogue import load_catalogue
    from hubensemble.hub.resolvers import resolve

    with _archive_served(tmp_path, tiny_module, monkeypatch) as (base, asked):
        (tmp_path / "c.yaml").write_text(
            f"modules:\n  - name: a\n    handle: {base}?tf-hub-format=compressed\n"
            f"  - name: b\n    handle: {base}?sig=x&tf-hub-format=compressed\n")
        specs = load_catalogue(tmp_path / "c.yaml")
        assert [s.handle for s in specs] == [base, base + "?sig=x"]
        path = resolve(specs[0].handle)
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert asked == ["/m.tar.gz?tf-hub-format=compressed"], asked


def test_a_handle_given_with_the_query_outside_a_catalogue_asks_for_it_once(
        tmp_path, tiny_module, monkeypatch):
    # The catalogue stored the handle without the query, but one given straight to resolve()
    # (hub.load_module, HubLayer) was still fetched with it twice (396's report).
    from hubensemble.hub.resolvers import resolve

    with _archive_served(tmp_path, tiny_module, monkeypatch) as (base, asked):
        path = resolve(f"{base}?sig=x&tf-hub-format=compressed")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert asked == ["/m.tar.gz?sig=x&tf-hub-format=compressed"], asked
