"""The configuration reference (every key of every config kind with its type, default and meaning, read from
the typed settings of shared/settings/) and the command-line reference (every subcommand and option, read
from the `dppo` parser)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from dppo.cli import build_parser
from shared.settings import (
    ALGORITHMS,
    DiffusionConfig,
    DiffusionPPOModelConfig,
    EvalConfig,
    ExactDiffusionPPOModelConfig,
    GaussianModelConfig,
    GaussianPPOModelConfig,
    PretrainConfig,
)
from shared.settings.ddpo import DDPOConfig, DDPOModelConfig, DDPOPretrainConfig
from shared.settings.glossary import MEANINGS
from shared.settings.guided import GuidedConfig, GuidedModelConfig

INTERNAL_FIELDS = {"raw"}  # filled by the reader (the resolved mapping itself), never a key of a file


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if tp is type(None):
        return "null"
    if tp is typing.Any:
        return "section"
    return "section" if dataclasses.is_dataclass(tp) else getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else f"`{value!r}`" if isinstance(value, str) else f"`{value}`"


def meaning(f: dataclasses.Field, section: type) -> str:
    """The field's own doc, else the glossary's meaning of `Section.key` or of the key ("" when none says)."""
    return f.metadata.get("doc") or MEANINGS.get(f"{section.__name__}.{f.name}") or MEANINGS.get(f.name, "")


def _sections(tp: Any) -> list[type]:
    return [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]


def config_rows(cls: type, prefix: str = "", model: type | None = None) -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) of every key of cls, nested sections flattened to dotted keys; `model`:
    the class the reader picks for the `model` section (typed Any on the config)."""
    hints, rows = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in INTERNAL_FIELDS:
            continue
        key = f"{prefix}{f.name}"
        sections = [model] if (f.name == "model" and model is not None) else _sections(hints[f.name])
        rows.append((key, _type_name(hints[f.name]) if not sections else "section", _default(f), meaning(f, cls)))
        for section in sections:
            rows += config_rows(section, f"{key}.")
    return rows


def config_kinds() -> list[tuple[str, str, type, type | None]]:
    """(title, what reads it, config class, model section class) for every kind of config."""
    kinds = [("Pre-training", "`dppo pretrain`", PretrainConfig, DiffusionConfig)]
    for a in ALGORITHMS.values():
        if a.name == "ppo":
            kinds += [("Fine-tuning: DPPO", "`dppo finetune` (upstream TrainPPODiffusionAgent)", a.config,
                       DiffusionPPOModelConfig),
                      ("Fine-tuning: Gaussian PPO", "`dppo finetune` (upstream TrainPPOGaussianAgent)", a.config,
                       GaussianPPOModelConfig)]
        elif a.name == "ppo_exact":
            kinds.append((f"Fine-tuning: {a.title}", f"`dppo finetune` ({a.upstream_agents[0].rsplit('.', 1)[-1]})",
                          a.config, ExactDiffusionPPOModelConfig))
        else:
            kinds.append((f"Fine-tuning: {a.title}", f"`dppo finetune` ({a.upstream_agents[0].rsplit('.', 1)[-1]})",
                          a.config, a.model_config))
    kinds += [("Evaluation: diffusion policy", "`dppo eval` (upstream EvalDiffusionAgent)", EvalConfig,
               DiffusionConfig),
              ("Evaluation: Gaussian policy", "`dppo eval` (upstream EvalGaussianAgent)", EvalConfig,
               GaussianModelConfig),
              ("Reward-guided diffusion", "`dppo guide` (configs/reward_guided/)", GuidedConfig, GuidedModelConfig),
              ("DDPO pre-training", "`dppo ddpo pretrain` (configs/ddpo/pretrain_digits.yaml)", DDPOPretrainConfig,
               DDPOModelConfig),
              ("DDPO fine-tuning", "`dppo ddpo train` (configs/ddpo/digits_*.yaml)", DDPOConfig, DDPOModelConfig)]
    return kinds


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference() -> str:
    out = []
    for title, reader, cls, model in config_kinds():
        out += [f"## {title}", "", f"Read by {reader} into `{cls.__name__}` (model section: `{model.__name__}`).", "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        out += [f"| `{key}` | {_cell(tp)} | {_cell(default)} | {_cell(text)} |"
                for key, tp, default, text in config_rows(cls, model=model)]
        out.append("")
    return "\n".join(out)


def _command_section(title: str, help_text: str, p: argparse.ArgumentParser, level: str = "##") -> list[str]:
    out = [f"{level} {title}", "", help_text + ".", "", "```", p.format_usage().strip(), "```", "",
           "| option | default | meaning |", "|---|---|---|"]
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest}`"
        optional = not action.option_strings and action.nargs in ("*", "?")
        if action.required and not optional:
            default = "required"
        elif action.default is None or action.default is argparse.SUPPRESS or action.default is False:
            default = ""
        else:
            default = f"`{action.default}`"
        choices = f" (one of {', '.join(map(str, action.choices))})" if action.choices else ""
        text = (action.help or "").replace("%(default)s", str(action.default))
        out.append(f"| {flags} | {_cell(default)} | {_cell(text + choices)} |")
    return [*out, ""]


def cli_reference() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = [f"`dppo`: {parser.description}. Every command takes `-h`/`--help`. Exit codes: 0 success, 1 `dppo "
           "parity` found a check past its limit, 2 bad input (one line on stderr, before any work), 3 training "
           "stopped on a non-finite loss or reward, 4 an environment failed, 130 Ctrl-C, 143 SIGTERM (the last "
           "checkpoint kept; rerunning resumes).", ""]
    for name, p in sub.choices.items():
        nested = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
        if nested is None:
            out += _command_section(f"dppo {name}", helps.get(name, ""), p)
            continue
        out += [f"## dppo {name}", "", helps.get(name, "") + ".", ""]
        nested_helps = {c.dest: c.help for c in nested._choices_actions}
        for action_name, action_parser in nested.choices.items():
            out += _command_section(f"dppo {name} {action_name}", nested_helps.get(action_name, ""), action_parser,
                                    level="###")
    return "\n".join(out)
