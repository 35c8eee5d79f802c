"""Offscreen rendering for the camera observations of robosuite envs, on machines without a display or GPU.

MuJoCo renders offscreen through EGL or OSMesa; on a CPU-only Linux machine both run Mesa's software
rasterizer (llvmpipe). robosuite picks its OpenGL context class once, when robosuite.utils.binding_utils is
imported, from the MUJOCO_GL environment variable (and forces "egl" unless MUJOCO_GL is "osmesa" or "glx"),
and PyOpenGL picks its platform from PYOPENGL_PLATFORM when OpenGL is first imported. So the backend is
decided before robosuite is imported: `choose_gl_backend` keeps a MUJOCO_GL the user set, else tries EGL,
then OSMesa, each in a short child process that renders one small frame (a failing GL library can abort
the process that loads it), and exports the winner (MUJOCO_GL and PYOPENGL_PLATFORM) so env workers
started later inherit it. When none renders, one ConfigError says what to install.

Render quality. robosuite's scenes ask MuJoCo for a 4096 shadow map and 4x multisampled offscreen buffers,
and some materials reflect (the floor; the table top with reflectance 0.01 in Lift). In software GL a 96x96
frame then costs about three times what it costs with a 1024 shadow map, no multisampling and reflections
off (measured in docs/guide/robomimic_images.md). The "fast" quality (the default here) sets those three
before the render context is made (MuJoCo reads the shadow size and sample count when it creates the
context; robosuite makes its context while robosuite.make resets the env, so the context is made again).
What changes in the frame: object edges are aliased instead of smoothed, shadows are blockier, and the
faint reflections on the floor are gone; the scene, its geometry, colours and lighting are the same (mean
absolute difference 1.3-1.4 grey levels of 255 per pixel on Lift's two cameras, all of it at edges). The
data and the env must be rendered at the same quality; "robosuite" keeps robosuite's settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from shared.errors import ConfigError

GL_BACKENDS = ("egl", "osmesa")
GL_INSTALL_HINT = ("offscreen rendering needs EGL or OSMesa (Mesa's software renderer works without a GPU): "
                   "apt-get install libegl1 libgl1-mesa-dri (then MUJOCO_GL=egl) or apt-get install libosmesa6 "
                   "(then MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa)")
# One frame of a red sphere: the backend works when the frame has red in it.
_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><light pos="0 0 3"/>'
                                   '<geom type="sphere" size="1" rgba="1 0 0 1"/></worldbody></mujoco>')
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 16, 16)
r.update_scene(d)
print(int(r.render()[..., 0].max()))
"""
_PROBE_TIMEOUT_S = 120  # a loaded machine starts Python and MuJoCo slowly; a hung driver must not hang the run


def gl_works(backend: str) -> bool:
    """Whether MuJoCo renders a frame with this backend (tried in a child process)."""
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                              timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    lines = done.stdout.split()
    return done.returncode == 0 and bool(lines) and lines[-1].isdigit() and int(lines[-1]) > 0


def choose_gl_backend(required: bool) -> str | None:
    """The OpenGL backend MuJoCo and robosuite render with, exported to the environment: MUJOCO_GL as the user
    set it (checked when rendering is `required`), else the first of EGL and OSMesa that renders. None
    (nothing exported) when none does and rendering is not `required` (state-only envs never render); a
    ConfigError saying what to install when it is."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen == "osmesa":  # PyOpenGL must load OSMesa too, or robosuite's OSMesa context fails
            os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        if required and not gl_works(chosen):
            raise ConfigError(f"MUJOCO_GL={chosen} does not render here (unset it to try {' and '.join(GL_BACKENDS)});"
                              f" {GL_INSTALL_HINT}")
        return chosen
    for backend in GL_BACKENDS:
        if gl_works(backend):
            os.environ["MUJOCO_GL"] = os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
    if required:
        raise ConfigError(f"no offscreen OpenGL backend renders here (tried MUJOCO_GL={' and '.join(GL_BACKENDS)}); "
                          f"{GL_INSTALL_HINT}")
    return None


@dataclass(frozen=True)
class RenderQuality:
    """MuJoCo's offscreen render settings: None keeps the scene's own."""

    shadow_size: int | None  # shadow map resolution (model.vis.quality.shadowsize)
    samples: int | None  # multisamples of the offscreen buffer (model.vis.quality.offsamples)
    reflections: bool  # mirror reflections of reflective materials (the scene flag mjRND_REFLECTION)


RENDER_QUALITIES = {"fast": RenderQuality(1024, 0, False), "robosuite": RenderQuality(None, None, True)}


def render_quality(name: str) -> RenderQuality:
    if name not in RENDER_QUALITIES:
        raise ConfigError(f"unknown render quality {name!r}; choose one of {', '.join(RENDER_QUALITIES)}")
    return RENDER_QUALITIES[name]


def apply_render_quality(robosuite_env: object, quality: RenderQuality) -> None:
    """Set the quality on a robosuite env's offscreen renderer and make its MuJoCo render context again (the
    shadow size and sample count are read when a context is made). The context lives as long as the env
    (hard resets are off), so this is done once, after robosuite.make."""
    import mujoco

    context = robosuite_env.sim._render_context_offscreen  # type: ignore[attr-defined]
    if context is None:
        raise ConfigError("this robosuite env has no offscreen renderer (has_offscreen_renderer is off)")
    vis = robosuite_env.sim.model._model.vis.quality  # type: ignore[attr-defined]
    if quality.shadow_size is not None:
        vis.shadowsize = quality.shadow_size
    if quality.samples is not None:
        vis.offsamples = quality.samples
    if quality.shadow_size is not None or quality.samples is not None:
        context.gl_ctx.make_current()
        context.con.free()
        context._set_mujoco_context_and_buffers()
    context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(quality.reflections)
