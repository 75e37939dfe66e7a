"""Config: defaults, file, CLI overrides, and one-line errors naming file, line and key."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import REPO

from docsynth import config
from docsynth.errors import DocsynthError


def test_defaults_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 7\ngenerate:\n  per_document: 3\n  compositor_options:\n    landscape_p: 0.5\n")
    cfg = config.load(path, {"generate.per_document": 9, "generate.out": None})
    assert cfg.seed == 7
    assert cfg.generate.per_document == 9  # flag beats file
    assert cfg.generate.out == config.RunConfig().generate.out  # unset flag keeps default
    assert cfg.generate.compositor_options["landscape_p"] == 0.5


def test_docsynth_yaml_in_cwd_is_read(tmp_path):
    (tmp_path / "docsynth.yaml").write_text("seed: 123\n")
    assert config.load(None, cwd=tmp_path).seed == 123


def test_unknown_key_and_wrong_type_are_all_reported_with_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\ngenerate:\n  per_documnet: 3\n  workers: two\n")
    with pytest.raises(DocsynthError) as err:
        config.load(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:3: unknown key 'generate.per_documnet'")
    assert "per_document" in lines[0]  # lists the known keys
    assert lines[1] == f"{path}:4: 'generate.workers' is 'two', expected an integer"


def test_bad_choice_and_bool_for_int(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("generate:\n  image_format: gif\n  workers: true\n")
    with pytest.raises(DocsynthError) as err:
        config.load(path)
    text = str(err.value)
    assert "expected one of jpg, png" in text and "'generate.workers' is True" in text


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(DocsynthError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("generate: [1, 2\n")
    with pytest.raises(DocsynthError, match=r"broken.yaml:\d+: .*fix the YAML syntax"):
        config.load(broken)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(DocsynthError, match="top level must be a mapping"):
        config.load(top)


def test_config_show_cli(cli, tmp_path):
    (tmp_path / "docsynth.yaml").write_text("seed: 5\n")
    result = cli("config", "show", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["seed"] == 5
    human = cli("config", "show")
    assert "seed: 5" in human.stdout
    bad = cli("config", "show", "--config", str(tmp_path / "missing.yaml"))
    assert bad.exit_code == 2
    assert bad.stderr.strip().count("\n") == 0 and "config file not found" in bad.stderr


def test_plugin_options_are_typed_and_checked_when_the_config_loads(tmp_path):
    """A misspelled key or a value out of range in a plugin's options is one line with file, line,
    key, what is allowed and the plugin's name, before any work (config.load and docsynth run)."""
    from docsynth.run import checks as run_checks
    from docsynth.run.stages import STAGES

    path = tmp_path / "docsynth.yaml"
    path.write_text("scan:\n  postprocessor: robust\n  postprocessor_options:\n    treshold: 0.5\n"
                    "    min_area: 2\ntrain:\n  backbone: compact\n  backbone_options: {width: 0}\n")
    with pytest.raises(DocsynthError) as err:
        config.load(path)
    lines = str(err.value).splitlines()
    assert f"{path}:4: unknown key 'scan.postprocessor_options.treshold' (known here: min_area, min_confidence, " \
           "min_iou, threshold) (postprocessor 'robust')" in lines
    assert f"{path}:5: 'scan.postprocessor_options.min_area' is 2, expected a number from 0 to 1 " \
           "(postprocessor 'robust')" in lines
    assert f"{path}:8: 'train.backbone_options.width' is 0, expected a number > 0 (backbone 'compact')" in lines
    problems = run_checks.check(run_checks.load_config(path), STAGES)
    assert any("scan.postprocessor_options.treshold" in p and "(postprocessor 'robust')" in p for p in problems)
    path.write_text("scan:\n  postprocessor: refine\n  postprocessor_options: {band: 12, passes: 1}\n")
    assert config.load(path).scan.postprocessor_options == {"band": 12, "passes": 1}


def test_plugins_list_shows_option_schemas_and_config_show_the_effective_values(cli, tmp_path):
    infos = json.loads(cli("plugins", "list", "--json").stdout)
    scan = next(i for i in infos if i["provides"].get("postprocessor") and "refine" in i["provides"]["postprocessor"])
    band = scan["options"]["postprocessor"]["refine"]["band"]
    assert band["default"] is None and band["low"] == 0 and "number" in band["type"]
    (tmp_path / "docsynth.yaml").write_text("scan:\n  postprocessor_options: {passes: 1}\n")
    human = cli("config", "show").stdout
    shown = "\n".join(line[4:] for line in human.split("# plugin options in effect")[1].splitlines()[1:])
    effective = yaml.safe_load(shown)
    assert effective["scan.postprocessor_options"]["passes"] == 1
    assert effective["scan.postprocessor_options"]["min_corner_score"] == 0.3
    assert yaml.safe_load(human)["scan"]["postprocessor_options"] == {"passes": 1}  # still valid YAML


@pytest.mark.parametrize("recipe", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "recipes").rglob("*.yaml")))
def test_every_recipe_config_loads_and_its_compositor_takes_its_options(recipe):
    """A candidate recipe is trained for hours before anyone reads its numbers: a typo in it
    must fail here, not at its first sample."""
    from docsynth import options, plugins

    cfg = config.load(REPO / recipe)
    compositor = plugins.get("compositor", cfg.generate.compositor)
    built = options.build(compositor, cfg.generate.compositor_options, "generate.compositor_options")
    assert set(cfg.generate.compositor_options) <= set(built)
