"""Scanning without torch (the packaged ONNX model) and exports checked against the original."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_docsynth
from scan_fixtures import tiny_checkpoint, write_photo_folder

REALDOCS = REPO.parent / "shared" / "realdocs"
NO_TORCH = Path(__file__).resolve().parent / "no_torch"
needs_realdocs = pytest.mark.skipif(not (REALDOCS / "corners.csv").is_file(), reason="../shared/realdocs is absent")


def _max_corner_distance(a, b) -> float:
    return float(np.hypot(*(np.asarray(a) - np.asarray(b)).T).max())


# ---------------------------------------------------------------------------------------------
# The packaged ONNX model
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_realdocs
def test_packaged_onnx_scans_like_the_packaged_checkpoint_on_realdocs():
    """The shipped .onnx is an export of the shipped .pt (it records the .pt's SHA-256), and
    scanning with it gives the same corners within 0.05 px on every real photo."""
    from docsynth.formats.corners import read_folder
    from docsynth.scan.scanner import (
        PACKAGED_MODEL,
        OnnxBackend,
        Scanner,
        TorchBackend,
        file_sha256,
        load_backend,
        read_photo,
    )

    onnx_backend = load_backend(None)
    assert isinstance(onnx_backend, OnnxBackend), "the packaged ONNX is stale; re-export it (docs/scan.md)"
    assert onnx_backend.meta["source_sha256"] == file_sha256(PACKAGED_MODEL)
    torch_backend = load_backend(PACKAGED_MODEL)
    assert isinstance(torch_backend, TorchBackend)
    a, b = Scanner(torch_backend, "refine"), Scanner(onnx_backend, "refine")
    items = read_folder(REALDOCS)
    assert len(items) >= 20
    for path, _ in items:
        photo = read_photo(path)
        qa, qb = a.locate(photo)[0], b.locate(photo)[0]
        assert (qa.corners is None) == (qb.corners is None), path.name
        if qa.corners is not None:
            assert _max_corner_distance(qa.corners, qb.corners) <= 0.05, path.name


def _no_torch_env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(NO_TORCH), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.mark.slow
def test_scan_and_evaluate_work_where_torch_cannot_be_imported(tmp_path):
    env = _no_torch_env()
    shim = subprocess.run([sys.executable, "-c", "import torch"], env={**os.environ, **env},
                          capture_output=True, text=True)
    assert shim.returncode == 1 and "No module named 'torch'" in shim.stderr  # the shim works
    truth = write_photo_folder(tmp_path / "photos")

    scan = run_docsynth("scan", "photos", "--out", "pages", "--json", cwd=tmp_path, env=env)
    assert scan.returncode == 0, scan.stderr
    summary = json.loads(scan.stdout)
    assert summary["photos"] == len(truth) and (tmp_path / "pages" / "corners.csv").is_file()

    ev = run_docsynth("evaluate", "photos", "--baseline", "classical", "--out", "report", "--json",
                      cwd=tmp_path, env=env)
    assert ev.returncode == 0, ev.stderr
    report = json.loads(ev.stdout)
    assert set(report["methods"]) == {"model:refine", "classical"}
    assert report["methods"]["classical"]["count"] == len(truth)

    # what needs torch says so in one line, naming the train extra
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    for args in (["export-model", "tiny.pt", "--out", "m.onnx"], ["train", "photos", "--out", "run"],
                 ["scan", "tiny.pt", "photos", "--out", "o"]):
        res = run_docsynth(*args, cwd=tmp_path, env=env)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
        assert "docsynth[train]" in res.stderr and "torch==" in res.stderr
    assert ckpt.is_file() and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_scanning_with_the_packaged_onnx_never_imports_torch(tmp_path):
    """Even where torch is installed, scanning with the packaged model leaves it unimported."""
    write_photo_folder(tmp_path / "photos")
    code = ("import sys\nfrom docsynth.cli.app import main\n"
            "try:\n    main(['scan', 'photos', '--out', 'o'])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('TORCH=' + str('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DOCSYNTH_LOAD_PLUGINS": "docsynth"})
    assert "TORCH=False" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
def test_a_stale_packaged_onnx_gives_way_to_the_checkpoint(cli, tmp_path, monkeypatch, capsys):
    """When docsynth-cpu.pt is replaced and not re-exported, the .pt wins (torch is here) and a
    note gives the re-export command; once re-exported, the ONNX is used again."""
    import docsynth.scan.scanner as scan

    assets = tmp_path / "assets"
    assets.mkdir()
    monkeypatch.setattr(scan, "PACKAGED_MODEL", assets / "docsynth-cpu.pt")
    tiny_checkpoint(assets / "docsynth-cpu.pt", with_corners=True)
    res = cli("export-model", str(assets / "docsynth-cpu.pt"), "--out", str(assets / "docsynth-cpu.onnx"),
              "--check", "2")
    assert res.exit_code == 0, res.output
    assert isinstance(scan.load_backend(None), scan.OnnxBackend)
    import torch

    retrained = torch.load(assets / "docsynth-cpu.pt", weights_only=False)
    retrained["input_size"] = 64  # another checkpoint of the same backbone
    torch.save(retrained, assets / "docsynth-cpu.pt")
    capsys.readouterr()
    assert isinstance(scan.load_backend(None), scan.TorchBackend)
    note = capsys.readouterr().err
    assert "docsynth-cpu.onnx was not exported from the packaged docsynth-cpu.pt" in note
    assert "docsynth export-model docsynth/assets/docsynth-cpu.pt --format onnx" in note


# ---------------------------------------------------------------------------------------------
# export-model: precisions, verification, determinism
# ---------------------------------------------------------------------------------------------


def _onnx_meta(path: Path) -> dict:
    import onnx

    proto = onnx.load(str(path))
    return json.loads({p.key: p.value for p in proto.metadata_props}["docsynth"])


@pytest.mark.slow
def test_onnx_export_is_deterministic_fixed_shape_and_records_its_source(cli, tmp_path):
    import onnx

    from docsynth.scan.scanner import file_sha256

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", with_corners=True)
    for name in ("a.onnx", "b.onnx"):
        res = cli("export-model", str(ckpt), "--out", name, "--check", "2", "--json")
        assert res.exit_code == 0, res.output
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    summary = json.loads(res.stdout)
    assert summary["bytes"] == (tmp_path / "b.onnx").stat().st_size and summary["latency_ms"] > 0
    assert summary["agreement"]["composites"]["photos"] == 2
    composites = summary["agreement"]["composites"]
    assert composites["jaccard_diff"] is None or abs(composites["jaccard_diff"]) <= 0.001
    proto = onnx.load(str(tmp_path / "a.onnx"))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(proto.graph.input) + list(proto.graph.output)}
    assert shapes["image"] == [1, 3, 96, 96] and shapes["corners"] == [1, 4, 48, 48]  # no dynamic axis
    assert not {n.op_type for n in proto.graph.node} & {"Einsum", "Loop", "If"}
    meta = _onnx_meta(tmp_path / "a.onnx")
    assert meta["source_sha256"] == file_sha256(ckpt) and meta["precision"] == "fp32"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_exports_scan(cli, tmp_path, precision):
    import onnx

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", with_corners=True)
    write_photo_folder(tmp_path / "photos")
    # the tiny model's corner head has random weights (flat heatmaps whose peaks any rounding
    # moves, hence --max-flips 1), so this checks the mechanics, not the quality: the packaged
    # model's test does that
    res = cli("export-model", str(ckpt), "--precision", precision, "--out", "m.onnx", "--check", "3",
              "--calibration", "4", "--real", "photos", "--max-jaccard-diff", "1", "--max-flips", "1", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["precision"] == precision and set(summary["agreement"]) == {"composites", "real"}
    assert summary["agreement"]["real"]["scored"] == 3
    proto = onnx.load(str(tmp_path / "m.onnx"))
    ops = {n.op_type for n in proto.graph.node}
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    else:
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert _onnx_meta(tmp_path / "m.onnx")["precision"] == precision
    scanned = cli("scan", "m.onnx", "photos", "--out", "pages", "--json")
    assert scanned.exit_code == 0, scanned.output
    assert json.loads(scanned.stdout)["photos"] == 3


@pytest.mark.slow
def test_an_export_that_disagrees_fails_in_one_line_and_writes_nothing(cli, tmp_path, monkeypatch):
    import docsynth.scan.exporters.to_onnx as to_onnx

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", with_corners=True)
    write_photo_folder(tmp_path / "photos")
    real_runner = to_onnx.onnx_runner

    def shifted(path, threads=1):
        run = real_runner(path, threads)
        # the page mask and heatmaps move 12 of 96 cells right: corners about 40 px from the original's
        return lambda x: {k: np.roll(v, v.shape[-1] // 8, axis=-1) for k, v in run(x).items()}

    monkeypatch.setattr(to_onnx, "onnx_runner", shifted)
    res = cli("export-model", str(ckpt), "--precision", "fp16", "--out", "m.onnx", "--check", "2",
              "--real", "photos", "--post", "refine", "--max-corner-px", "1")
    assert res.exit_code == 1
    assert res.stderr.count("docsynth: error:") == 1 and "disagrees with the original" in res.stderr
    assert "not written" in res.stderr and not (tmp_path / "m.onnx").exists()


def test_export_input_errors_are_one_line(cli, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    res = cli("export-model", str(ckpt), "--precision", "int4", "--out", "m.onnx")
    assert res.exit_code == 2 and "--precision: 'int4' is not one of 'fp32', 'fp16', 'int8'" in res.stderr
    res = cli("export-model", str(ckpt), "--out", "m.onnx", "--real", "nowhere")
    assert res.exit_code == 2 and "nowhere" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@needs_realdocs
def test_int8_export_of_the_packaged_model_meets_the_goals(cli, tmp_path):
    """The issue's goals for the shipped model: int8 at most a third of the fp32 size, mean
    Jaccard on realdocs no more than 0.005 below the original's, no slower than fp32 on one
    core. A gain is allowed (refine's jumps make int8 score +0.005 on these 31 photos, all of it
    from one photo, see TOLERANCES), but the model's own corners must stay close."""
    from docsynth.scan.export_model import one_core_latency_ms
    from docsynth.scan.exporters.to_onnx import onnx_runner
    from docsynth.scan.scanner import PACKAGED_MODEL, packaged_onnx

    res = cli("export-model", str(PACKAGED_MODEL), "--precision", "int8", "--out", "int8.onnx",
              "--real", str(REALDOCS), "--check", "4", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["bytes"] <= packaged_onnx().stat().st_size / 3
    real = summary["agreement"]["real"]
    assert real["scored"] >= 20 and real["jaccard_diff"] >= -0.005
    assert summary["tolerance"]["real"] == {"corner_px": None, "jaccard": 0.005, "two_sided": False, "confidence": 0.3,
                                            "flips": 0.125}
    assert real["max_confidence_diff"] <= 0.3
    # quantization moves the heatmap peaks by a fraction of a pixel on most photos
    assert real["median_model_corner_px"] <= 1.0
    x = np.zeros((1, 3, *summary["input_size"]), np.float32)
    fp32_ms = one_core_latency_ms(onnx_runner(packaged_onnx()), x)
    int8_ms = one_core_latency_ms(onnx_runner(tmp_path / "int8.onnx"), x)
    assert int8_ms <= fp32_ms * 1.1, (int8_ms, fp32_ms)


def test_jaccard_tolerance_is_two_sided_for_fp32_and_bounds_only_a_loss_below():
    from docsynth.errors import DocsynthError
    from docsynth.scan.export_model import TOLERANCES, _enforce

    def check(precision, diff):
        a = {"found_differs": [], "max_corner_px": 0.0, "worst": None, "jaccard_diff": diff,
             "mean_jaccard_original": 0.9, "mean_jaccard_export": 0.9 + diff}
        _enforce({"real": a}, TOLERANCES[precision], Path("m.onnx"), "onnx", precision)

    check("int8", 0.05)  # scoring better is no defect of a reduced-precision export
    check("int8", -0.005)
    with pytest.raises(DocsynthError, match="at most 0.005 lower"):
        check("int8", -0.0051)
    with pytest.raises(DocsynthError, match="at most 0.002 lower"):
        check("fp16", -0.003)
    check("fp32", 0.0009)
    for diff in (0.0011, -0.0011):  # an fp32 graph computes the same function: any change is a bug
        with pytest.raises(DocsynthError, match="within 0.001"):
            check("fp32", diff)


def test_model_corner_flips_are_allowed_on_one_photo_or_an_eighth_and_refused_beyond():
    from docsynth.errors import DocsynthError
    from docsynth.scan.export_model import TOLERANCES, Tolerance, _enforce

    def check(flips, photos, tol=TOLERANCES["fp16"]["real"]):
        a = {"found_differs": [], "max_corner_px": 0.0, "worst": None, "jaccard_diff": 0.0, "photos": photos,
             "mean_jaccard_original": 0.9, "mean_jaccard_export": 0.9, "model_flips": flips}
        _enforce({"real": a}, {"real": tol}, Path("m.onnx"), "onnx", "fp16")

    check(["a.jpg"], 4)  # one photo always may (an eighth of 4 rounds to none)
    check([f"{k}.jpg" for k in range(4)], 36)  # 4 of 36: within an eighth
    with pytest.raises(DocsynthError, match=r"jump to another peak in 2 of 4 \(first: a.jpg; at most 1\)"):
        check(["a.jpg", "b.jpg"], 4)
    with pytest.raises(DocsynthError, match="in 5 of 36"):
        check([f"{k}.jpg" for k in range(5)], 36)
    with pytest.raises(DocsynthError, match="at most 0"):  # --max-flips 0
        check(["r.jpg"], 36, Tolerance(None, 0.002, flips=0.0))


# ---------------------------------------------------------------------------------------------
# TFLite (optional extra) and Core ML (structure only off Apple systems)
# ---------------------------------------------------------------------------------------------


def _importable(*modules: str) -> bool:
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:
        return False


needs_litert = pytest.mark.skipif(not _importable("litert_torch", "ai_edge_litert"),
                                  reason="litert-torch / ai-edge-litert not installed (pip install 'docsynth[tflite]')")


@needs_litert
def test_tflite_export_runs_with_the_litert_interpreter(cli, tmp_path, capfd):
    """A real conversion of a tiny corner model: the LiteRT interpreter runs the file, its raw
    outputs match PyTorch, corners agree within 1 px (the issue's goal) and the converter's
    chatter stays off stdout, so --json can be parsed."""
    from docsynth.scan.exporters.to_tflite import tflite_runner
    from docsynth.scan.model_contract import load_model, preprocess

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", with_corners=True)
    write_photo_folder(tmp_path / "photos")
    res = cli("export-model", str(ckpt), "--format", "tflite", "--out", "m.tflite", "--check", "2",
              "--real", "photos", "--max-corner-px", "1", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    leaked = capfd.readouterr()
    assert "LiteRT" not in leaked.out and "XNNPACK" not in leaked.out + leaked.err, leaked
    assert summary["format"] == "tflite" and summary["max_abs_diff"] <= 1e-3
    assert summary["agreement"]["real"]["max_corner_px"] <= 1.0
    assert summary["agreement"]["real"]["scored"] == 3
    path = tmp_path / "m.tflite"
    assert summary["bytes"] == path.stat().st_size and path.read_bytes()[4:8] == b"TFL3"
    model, meta = load_model(ckpt)
    run = tflite_runner(path, summary["outputs"])
    x = preprocess(np.full((120, 130, 3), 90, np.uint8), meta)
    out = run(x)
    import torch

    with torch.inference_mode():
        ref = model(torch.from_numpy(x))
    for key in ("out", "corners"):
        assert out[key].shape == tuple(ref[key].shape)
        np.testing.assert_allclose(out[key], ref[key].numpy(), atol=1e-3)


@pytest.mark.slow
@pytest.mark.skipif(not _importable("coremltools"), reason="coremltools not installed (pip install 'docsynth[coreml]')")
def test_coreml_export_is_a_structurally_valid_mlpackage(cli, tmp_path):
    """Core ML cannot run on Linux: the .mlpackage is checked for its structure, and the check
    itself rejects a package whose interface is not the model's."""
    import coremltools as ct

    from docsynth.errors import DocsynthError
    from docsynth.scan.exporters.to_coreml import check_coreml_spec
    from docsynth.scan.scanner import file_sha256

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt", with_corners=True)
    res = cli("export-model", str(ckpt), "--format", "coreml", "--precision", "fp16", "--out", "m.mlpackage",
              "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["verified"].startswith("structure only") and summary["precision"] == "fp16"
    pkg = tmp_path / "m.mlpackage"
    manifest = json.loads((pkg / "Manifest.json").read_text())
    assert len(manifest["itemInfoEntries"]) == 2  # the model spec and its weights
    weights = pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    assert weights.stat().st_size > 0 and all(p.stat().st_mode & 0o044 for p in pkg.rglob("*") if p.is_file())
    spec = ct.utils.load_spec(str(pkg))
    assert spec.WhichOneof("Type") == "mlProgram"
    assert [i.name for i in spec.description.input] == ["image"]
    assert {o.name: list(o.type.multiArrayType.shape) for o in spec.description.output} == {
        "out": [1, 2, 96, 96], "corners": [1, 4, 48, 48]}
    meta = json.loads(spec.description.metadata.userDefined["docsynth"])
    assert meta["source_sha256"] == file_sha256(ckpt) and meta["input_size"] == 96
    main = spec.mlProgram.functions["main"]
    ops = main.block_specializations[main.opset].operations
    fp16_consts = [op for op in ops if op.type == "const"
                   and op.outputs[0].type.tensorType.dataType == ct.proto.MIL_pb2.DataType.Value("FLOAT16")]
    assert fp16_consts, "fp16 weights"
    shapes = {"out": [1, 2, 96, 96], "corners": [1, 4, 48, 48]}
    check_coreml_spec(spec, pkg, ["out", "corners"], [1, 3, 96, 96], shapes)
    with pytest.raises(DocsynthError, match="corners has shape"):
        check_coreml_spec(spec, pkg, ["out", "corners"], [1, 3, 96, 96], {**shapes, "corners": [1, 4, 96, 96]})
    with pytest.raises(DocsynthError, match="expected \\['image'\\] and \\['out'\\]"):
        check_coreml_spec(spec, pkg, ["out"], [1, 3, 96, 96], shapes)
    again = cli("export-model", str(ckpt), "--format", "coreml", "--out", "m.mlpackage")
    assert again.exit_code == 2 and "--force" in again.stderr


def test_optional_formats_say_how_to_install_them(cli, tmp_path, monkeypatch):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    for fmt, module, extra in (("tflite", "litert_torch", "pip install 'docsynth[tflite]'"),
                               ("coreml", "coremltools", "pip install 'docsynth[coreml]'")):
        monkeypatch.setitem(sys.modules, module, None)  # what a missing package looks like to import
        res = cli("export-model", str(ckpt), "--format", fmt, "--out", f"m{fmt}")
        assert res.exit_code == 2, res.output
        assert len(res.stderr.strip().splitlines()) == 1 and extra in res.stderr, res.stderr
        assert f"--format {fmt} needs {module}" in res.stderr
        assert not (tmp_path / f"m{fmt}").exists()


def test_scan_and_evaluate_explain_that_app_exports_do_not_run_here(cli, tmp_path):
    write_photo_folder(tmp_path / "photos")
    (tmp_path / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3")
    (tmp_path / "m.mlpackage").mkdir()
    for model, kind in (("m.tflite", "TFLite"), ("m.mlpackage", "Core ML")):
        for args in (["scan", model, "photos", "--out", "o"], ["evaluate", model, "photos", "--out", "r"]):
            res = cli(*args)
            assert res.exit_code == 2, res.output
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr
            assert f"a {kind} export runs in apps" in res.stderr and "--format onnx" in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# The NumPy reference of what an app does around the model
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mobile_reference_matches_the_scanner(tmp_path):
    import cv2

    from docsynth.scan import mobile
    from docsynth.scan.export_model import draw_composites
    from docsynth.scan.model_contract import preprocess
    from docsynth.scan.scanner import load_backend

    backend = load_backend(None)
    meta = backend.meta
    one_level = 1 / 255 / min(meta["std"])  # an 8-bit rounding tie may land one level apart
    for name, photo, _ in draw_composites(4, seed=5):
        x_ref = mobile.preprocess(photo[..., ::-1], meta)  # apps hold RGB bitmaps
        x = preprocess(photo, meta)
        diff = np.abs(x_ref - x)
        assert diff.max() <= one_level * 1.01, name
        # values one level apart are exact ties (n + 0.5) that OpenCV's float32 sums round the
        # other way; anything else would be a real difference of the resize
        exact = mobile.shrink(photo[..., ::-1], *mobile.input_hw(meta)).transpose(2, 0, 1)[None]
        apart = diff > one_level / 2
        assert np.all(np.abs(exact[apart] % 1 - 0.5) < 1e-3), name
        assert apart.mean() < 0.02, name  # ties are common on flat paper (a page filling the frame)
        out = backend.run(x)
        ref = mobile.decode(out["out"], out.get("corners"), photo.shape[1], photo.shape[0])
        pred = backend.predict(photo)
        assert _max_corner_distance(ref["corners"], pred.corners) < 1e-3, name
        np.testing.assert_allclose(ref["scores"], pred.corner_scores, atol=1e-6)
        up = cv2.resize(ref["page_prob"].astype(np.float32), (photo.shape[1], photo.shape[0]),
                        interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(up, pred.page_prob, atol=1e-5)


def test_area_weights_average_exactly():
    from docsynth.scan.mobile import area_weights

    w = area_weights(10, 4)  # 2.5 source pixels per cell
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(w[0], [0.4, 0.4, 0.2, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(w[1], [0, 0, 0.2, 0.4, 0.4, 0, 0, 0, 0, 0])
