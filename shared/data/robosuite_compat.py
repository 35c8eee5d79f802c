"""robosuite 1.4.1 (upstream DPPO's version) on the project's MuJoCo (4.x), loaded once with a small fix.

robosuite 1.4.1 was written against MuJoCo 2.3; two of its call sites break on MuJoCo >= 3.10 and
nothing else does (all four robomimic tasks build, reset and step once these are fixed):

1. `MjModel.get_joint_qpos_addr` / `get_joint_qvel_addr` (robosuite/utils/binding_utils.py) assert
   `jnt_type[j] in (mjJNT_HINGE, mjJNT_SLIDE)`: the tuple's members are MuJoCo enums and the value a
   numpy int32; since MuJoCo 3.10 the enum's `==` against a numpy integer is False (the reverse
   comparison still works), so every hinge joint trips the assertion. Replaced by the same lookup on
   int(jnt_type).
2. `Controller.update` (robosuite/controllers/base_controller.py) builds the dense mass matrix with
   `mujoco.mj_fullM(model, dst, data.qM)`; MuJoCo 3.10 removed `MjData.qM` and changed the function
   to `mj_fullM(model, data, dst)`. The controller module gets a view of `mujoco` whose mj_fullM takes
   the old argument order, and robosuite's data wrapper a `qM` that hands that view the MjData.

The fix touches robosuite's classes and one module attribute of robosuite, never the `mujoco` module
itself, so the gymnasium MuJoCo envs are unaffected. On a MuJoCo that still has `MjData.qM`, part 2 is
not applied.
"""

from __future__ import annotations

import logging
import os
import types
from typing import Any

from shared.data.rendering import GL_INSTALL_HINT, choose_gl_backend, gl_works
from shared.errors import ConfigError

ROBOSUITE_VERSION = "1.4.1"
INSTALL_HINT = "bash scripts/setup.sh (or: pip install --no-deps robosuite==1.4.1 && pip install -e '.[robomimic]')"

_loaded: types.ModuleType | None = None
_renders = False  # whether the OpenGL backend robosuite was loaded with has rendered a frame


def import_robosuite(rendering: bool = False) -> types.ModuleType:
    """robosuite, patched for this MuJoCo, with its offscreen OpenGL backend chosen first
    (shared/data/rendering.py); one ConfigError saying what to install when robosuite is missing or not
    upstream's version, or when `rendering` (camera observations) and no backend renders."""
    global _loaded, _renders
    if _loaded is not None:
        if rendering and not _renders:
            backend = os.environ.get("MUJOCO_GL", "egl")
            if not gl_works(backend):
                raise ConfigError(f"robosuite was loaded with MUJOCO_GL={backend}, which does not render here; "
                                  f"{GL_INSTALL_HINT}")
            _renders = True
        return _loaded
    choose_gl_backend(required=rendering)
    _renders = rendering  # checked by choose_gl_backend; a state env's process checks when a camera env comes
    # robosuite warns on every import that it has no private macro file; it needs none here.
    logging.getLogger("robosuite_logs").addFilter(lambda record: "macro" not in record.getMessage())
    try:
        import robosuite
    except ImportError as exc:
        raise ConfigError(f"robomimic tasks need robosuite {ROBOSUITE_VERSION} ({exc}); install it with: "
                          f"{INSTALL_HINT}") from None
    if robosuite.__version__ != ROBOSUITE_VERSION:
        raise ConfigError(f"robomimic tasks need robosuite {ROBOSUITE_VERSION} (upstream DPPO's), found "
                          f"{robosuite.__version__}; install it with: {INSTALL_HINT}")
    patch_robosuite()
    _loaded = robosuite
    return robosuite


def patch_robosuite() -> None:
    """Apply the two fixes of the module docstring (idempotent)."""
    import mujoco
    import robosuite.controllers.base_controller as base_controller
    import robosuite.utils.binding_utils as binding

    joint = mujoco.mjtJoint
    qpos_width = {int(joint.mjJNT_FREE): 7, int(joint.mjJNT_BALL): 4, int(joint.mjJNT_SLIDE): 1,
                  int(joint.mjJNT_HINGE): 1}
    dof_width = {int(joint.mjJNT_FREE): 6, int(joint.mjJNT_BALL): 3, int(joint.mjJNT_SLIDE): 1,
                 int(joint.mjJNT_HINGE): 1}

    def joint_address(model: Any, name: str, first: Any, widths: dict[int, int]) -> int | tuple[int, int]:
        """A 1-wide joint's index into qpos/qvel, else its (start, stop) slice bounds."""
        j = model.joint_name2id(name)
        start, width = int(first[j]), widths[int(model.jnt_type[j])]
        return start if width == 1 else (start, start + width)

    binding.MjModel.get_joint_qpos_addr = lambda self, name: joint_address(self, name, self.jnt_qposadr, qpos_width)
    binding.MjModel.get_joint_qvel_addr = lambda self, name: joint_address(self, name, self.jnt_dofadr, dof_width)

    if not hasattr(mujoco.MjData, "qM"):
        binding.MjData.qM = property(lambda self: self._data)
        base_controller.mujoco = _MujocoOldFullM(mujoco)


class _MujocoOldFullM(types.ModuleType):
    """The `mujoco` module as robosuite 1.4.1's controllers call it: mj_fullM(model, dst, data) where data
    is what robosuite's patched `MjData.qM` returns (the MjData); everything else is mujoco's own."""

    def __init__(self, mujoco: types.ModuleType) -> None:
        super().__init__("mujoco")
        self._mujoco = mujoco

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mujoco, name)

    def mj_fullM(self, model: Any, dst: Any, data: Any) -> None:  # noqa: N802 (MuJoCo's name)
        self._mujoco.mj_fullM(model, data, dst)
