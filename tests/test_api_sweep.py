"""Every public endpoint, with every choice of each of its dropdowns, radios and checkboxes, returns a
result and not an error: the page offers no option that fails. One parameter varies at a time, the
others at their defaults (the page's), an image parameter gets the example photo; the choices are
the ones the running app offers (gradio_client's API info: what a visitor and a client can pick),
so a view whose stored data covers only some depths is held to those it offers. The other parameters
take the cheapest pair and attribution settings (CHEAP), and the live faithfulness scores vary their own
choices only (SAME_MODELS), which keeps the sweep to a few minutes on 2 cores."""
import time

import pytest
from gradio_client import handle_file

from tests.support import ROOT

pytestmark = pytest.mark.e2e

PHOTO = ROOT / "assets" / "examples" / "photo_cat.jpg"
CHEAP = {"ig_steps": 8, "nt_samples": 4, "plain": "plain20", "residual": "resnet20"}  # the others' values: the
# cheapest pair and attribution settings, where they are not what varies
SAME_MODELS = {"/faithfulness"}  # scores every method for both nets: its model choices load and explain the
# same served models as /explain's, which sweeps them, so here only its own choices vary
calls = []  # (endpoint, parameter, value, seconds), for the closing note


def _choices(param) -> list:
    kind = param["type"]
    if "enum" in kind:
        return list(kind["enum"])
    if kind.get("type") == "boolean":
        return [False, True]
    return []


def _defaults(params) -> dict:
    out = {}
    for p in params:
        name = p["parameter_name"]
        if p["component"] == "Image":
            out[name] = handle_file(str(PHOTO))
        elif name in CHEAP:
            out[name] = CHEAP[name]
        elif p.get("parameter_has_default"):
            out[name] = p["parameter_default"]
    return out


def _sweep(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for endpoint, info in sorted(api.items()):
        params = info["parameters"]
        base = _defaults(params)
        yield endpoint, base, None, None
        for p in params:
            if endpoint in SAME_MODELS and p["parameter_name"] in ("plain", "residual"):
                continue
            for value in _choices(p):
                if value != base.get(p["parameter_name"]):
                    yield endpoint, base, p["parameter_name"], value


def test_every_choice_of_every_endpoint_returns_a_result(client):
    failures, count = [], 0
    for endpoint, base, name, value in _sweep(client):
        kwargs = dict(base, **({name: value} if name else {}))
        t = time.perf_counter()
        try:
            out = client.predict(**kwargs, api_name=endpoint)
        except Exception as e:  # every failure is collected and reported together
            failures.append(f"{endpoint} {name}={value!r}: {e}")
            continue
        calls.append((endpoint, name, value, time.perf_counter() - t))
        count += 1
        outs = out if isinstance(out, tuple) else (out,)
        if all(o is None for o in outs):
            failures.append(f"{endpoint} {name}={value!r}: every output empty")
    assert not failures, "\n".join(failures)
    assert count >= 60  # the sweep reached every endpoint's choices (about 90 calls as the page stands)
