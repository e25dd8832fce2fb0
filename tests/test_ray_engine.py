"""``evaluate --engine ray``: the same evaluation on a real local Ray (started here with two
CPUs and shut down after), giving exactly the local engine's numbers."""

import json

import pytest
import ray
from click.testing import CliRunner

import edgecnn
from edgecnn.cli import main
from eval_fixture import LENET_PT, make_data, make_lenet


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_equals_local_engine(tmp_path, local_ray):
    model = make_lenet(str(tmp_path))
    data = make_data(str(tmp_path))
    broken = tmp_path / "digits" / "3" / "broken.png"  # one unreadable image on both engines
    broken.write_text("not a png")
    local = edgecnn.evaluate(model, data["folder"], LENET_PT, arch="lenet5", per_layer=True,
                             workers=1)
    r = CliRunner().invoke(main, ["evaluate", model, data["folder"], "--float", LENET_PT,
                                  "--arch", "lenet5", "--per-layer", "--engine", "ray",
                                  "--workers", "2", "--json"])
    assert r.exit_code == 0, r.output
    on_ray = json.loads(r.stdout)
    assert on_ray.pop("run")["parallelism"] == "Ray actors"
    assert on_ray == local.numbers()
    assert on_ray["images"] == 40 and len(on_ray["skipped_images"]) == 1
    assert "evaluating: 41/41 images (100%)" in r.stderr
