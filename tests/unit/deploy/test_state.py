import pytest

from geo_recon.deploy import state
from geo_recon.errors import LabError


def test_corrupt_state_file_is_named_with_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_RECON_HOME", str(tmp_path))
    path = state.lab_dir("x") / state.STATE_FILE
    path.parent.mkdir(parents=True)
    path.write_text('{"name": "x", "scheme": "as')
    with pytest.raises(LabError, match=f"{path}.*corrupt.*--force"):
        state.load("x")


def test_state_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("GEO_RECON_HOME", str(tmp_path))
    lab = state.LabState(name="x", scheme="async", regions=["a", "b"], isolation="loopback", base_port=1,
                         subnet=0, phase="up", created_at=1.0, lab_dir=str(state.lab_dir("x")),
                         pulsar_version="4.0.7", java="java")
    state.save(lab)
    assert state.load("x") == lab
    state.remove("x")
    assert state.load("x") is None
