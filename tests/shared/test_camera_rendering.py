"""Camera envs render through Mesa's software OpenGL, which crashes a process that has loaded TensorFlow
(measured: SIGSEGV creating the EGL context, in either order). The suite's workers load TensorFlow for other
files, so the camera cases run here in a fresh interpreter that never imports it, and in this process only
the refusal is checked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES = ["tests/shared/camera_cases_images.py", "tests/cli/camera_cases_image_demos.py"]


@pytest.mark.parametrize("path", CASES)
def test_camera_cases_pass_in_a_process_without_tensorflow(path: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          path], capture_output=True, text=True, timeout=1800, env=env)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    assert out.returncode == 0 and " passed" in summary and "failed" not in summary, \
        out.stdout[-4000:] + out.stderr[-2000:]


def test_a_camera_env_beside_tensorflow_is_one_message_not_a_crash() -> None:
    code = ("import core_tf\nfrom shared.data.robomimic import EnvMeta, RobomimicImageEnv\n"
            "from shared.errors import ConfigError\n"
            "try:\n    RobomimicImageEnv(EnvMeta.load('lift-img'), ('robot0_eef_pos',),\n"
            "                      ('robot0_eye_in_hand_image',))\n"
            "except ConfigError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    refusal = "refused: camera envs cannot render in a process that has loaded TensorFlow"
    assert out.returncode == 0 and refusal in out.stdout, out.stdout + out.stderr[-2000:]
