"""The test lanes (tests/conftest.py, pyproject.toml): the default run leaves out the slow, e2e and audit
lanes, a test sits in one lane at most, and under CI ($CI true) only a test that needs a GPU may skip."""
import os
import subprocess
import sys

from tests.support import ROOT

TESTS = '''
import pytest

def test_no_data():
    pytest.skip("CIFAR-10 is not in data/")

def test_needs_gpu():
    pytest.skip("needs a CUDA GPU")

@pytest.mark.slow
def test_slow():
    pass

def test_fast():
    pass
'''


def _pytest(tmp_path, body: str, ci: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(body)
    env = {**os.environ, "CI": ci}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), *args, str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_default_run_leaves_the_lanes_out_and_skips_outside_ci(tmp_path):
    r = _pytest(tmp_path, TESTS, "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 2 skipped, 1 deselected" in r.stdout


def test_under_ci_only_a_gpu_test_may_skip(tmp_path):
    r = _pytest(tmp_path, TESTS, "true")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 failed, 1 passed, 1 skipped, 1 deselected" in r.stdout
    assert "FAILED" in r.stdout and "test_no_data" in r.stdout and "CIFAR-10 is not in data/" in r.stdout


def test_a_lane_runs_with_its_marker(tmp_path):
    r = _pytest(tmp_path, TESTS, "true", "-m", "slow")
    assert r.returncode == 0 and "1 passed, 3 deselected" in r.stdout, r.stdout + r.stderr


def test_a_test_in_two_lanes_is_refused(tmp_path):
    two = "import pytest\n\n@pytest.mark.slow\n@pytest.mark.e2e\ndef test_x():\n    pass\n"
    r = _pytest(tmp_path, two, "", "-m", "slow or e2e")
    assert r.returncode != 0 and "is in more than one lane: ['e2e', 'slow']" in r.stdout + r.stderr
