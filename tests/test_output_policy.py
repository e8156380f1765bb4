"""Nothing a user owns is overwritten and no name from data becomes a path (issue 33).

Each case runs a command in-process (test_bad_input.run_cli), expects exit status 2 and one
``error:`` line naming the culprit, and checks that every file under the scratch folder is
byte-identical afterwards (SHA-256) and that nothing was written outside ``--out``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from test_bad_input import run_cli

LABEL_MAP = "w=angry,f=happy,n=neutral,t=sad"
CODES = {"angry": "w", "happy": "f", "neutral": "n", "sad": "t"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Generated audio (4 speakers x 4 emotions x 2), a prepared copy, one trained run."""
    from copypaste_ser.data.corpora.synthetic import generate
    from copypaste_ser.data.prepare import prepare_to_dir
    from copypaste_ser.training.config import make_config
    from copypaste_ser.training.loop import train

    root = tmp_path_factory.mktemp("policy")
    generate(root / "audio", speakers=4, utterances_per_emotion=2, seed=5)
    prepare_to_dir("synthetic", root / "audio", root / "data")
    train(make_config("tiny", data=str(root / "data"), epochs=1, threads=1), root / "run", progress=False)
    return {"root": root, "audio": root / "audio", "data": root / "data", "run": root / "run",
            "wav": sorted((root / "audio").rglob("*.wav"))[0]}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if p.name != ".copypaste-ser.lock"}


def refused(argv: list, expect: str, watch: Path) -> None:
    """The command fails with one line holding ``expect`` and ``watch`` is byte-identical."""
    before = tree_digest(watch)
    code, output = run_cli([str(a) for a in argv])
    lines = output.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    assert expect in lines[0], output
    assert tree_digest(watch) == before


def write_list(corpus: dict, path: Path, extra: dict | None = None, speaker=lambda s: f"talker-{s}") -> Path:
    """A CSV list of the generated audio; ``extra``: column -> value per speaker digit."""
    extra = extra or {}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker", *extra])
        for wav in sorted(corpus["audio"].rglob("*.wav")):
            spk, emo, _ = wav.stem.split("_")
            w.writerow([str(wav), CODES[emo], speaker(spk[-1]), *(fn(spk[-1]) for fn in extra.values())])
    return path


# ---------------------------------------------------------------- names from data as paths
@pytest.mark.parametrize("column, value, expect", [
    ("fold", lambda s: f"g{s}/../../../escaped-fold", "fold name"),
    ("fold-/abs/path/victim-run", lambda s: "test" if s == "0" else "dev" if s == "1" else "train", "fold name"),
    ("fold-..", lambda s: "test" if s == "0" else "dev" if s == "1" else "train", "fold name"),
])
def test_prepare_refuses_a_fold_name_that_is_not_one_path_component(corpus, tmp_path, column, value, expect):
    lst = write_list(corpus, tmp_path / "list.csv", {column: value})
    refused(["prepare", "folder", "--csv", lst, "--label-map", LABEL_MAP, "--out", tmp_path / "data"],
            expect, tmp_path)
    assert not (tmp_path / "data").exists() and not (tmp_path.parent / "escaped-fold").exists()


@pytest.mark.parametrize("speaker, expect", [
    (lambda s: f"../../spk{s}", "speaker"), (lambda s: f"spk{s}\x07", "speaker"), (lambda s: "..", "speaker"),
])
def test_prepare_refuses_a_speaker_id_that_would_become_a_path(corpus, tmp_path, speaker, expect):
    lst = write_list(corpus, tmp_path / "list.csv", speaker=speaker)
    refused(["prepare", "folder", "--csv", lst, "--label-map", LABEL_MAP, "--folds", "loso",
             "--out", tmp_path / "data"], expect, tmp_path)
    assert not (tmp_path / "data").exists()


def test_a_hand_edited_fold_name_never_loads(corpus, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus["data"], data)
    proto = json.loads((data / "protocol.json").read_text())
    proto["folds"][0]["name"] = "../../victim"
    (data / "protocol.json").write_text(json.dumps(proto))
    refused(["train", "--data", data, "--fold", "all", "--preset", "tiny", "--epochs", "1", "--quiet",
             "--out", tmp_path / "runs"], "fold name '../../victim'", tmp_path)
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "victim").exists()


def test_child_path_stays_inside_its_parent(tmp_path):
    from copypaste_ser.errors import UserError
    from copypaste_ser.validation import child_path

    assert child_path(tmp_path, "loso-spk1") == tmp_path / "loso-spk1"
    for bad in ("..", "a/../../b", "/etc", "", " x", "x" * 201):
        with pytest.raises(UserError):
            child_path(tmp_path, bad)


# ---------------------------------------------------------------- outputs over existing files
def test_predict_never_replaces_a_users_file_and_force_replaces_only_its_own(corpus, tmp_path):
    keep = tmp_path / "keep.csv"
    keep.write_text("my,own,table\n1,2,3\n")
    predict = ["predict", corpus["run"], corpus["wav"]]
    refused([*predict, "--out", keep], "keep.csv: exists; pass --force", tmp_path)
    refused([*predict, "--out", keep, "--force"], "was not written by copypaste-ser", tmp_path)
    ours = tmp_path / "ours.csv"
    assert run_cli([str(a) for a in [*predict, "--out", ours]])[0] == 0
    refused([*predict, "--out", ours], "ours.csv: exists; pass --force", tmp_path)
    assert run_cli([str(a) for a in [*predict, "--out", ours, "--force"]])[0] == 0
    ours.write_text(ours.read_text() + "edited by hand\n")  # changed since: the user's now
    refused([*predict, "--out", ours, "--force"], "was not written by copypaste-ser", tmp_path)


def test_predict_on_bad_audio_leaves_out_as_it_was(corpus, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    out = tmp_path / "rows.csv"
    refused(["predict", corpus["run"], bad, "--out", out], "bad.wav", tmp_path)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_predict_keeps_same_named_inputs_apart_and_refuses_one_plot_twice(corpus, tmp_path):
    twin = tmp_path / "b" / corpus["wav"].name
    twin.parent.mkdir()
    shutil.copy(corpus["wav"], twin)
    code, output = run_cli([str(a) for a in ["predict", corpus["run"], corpus["wav"], twin, "--plot", tmp_path / "plots"]])
    assert code == 0, output
    parts = [corpus["wav"].resolve(), twin.resolve()]
    common = Path(os.path.commonpath([p.parent for p in parts]))
    expected = {"__".join(p.with_suffix("").relative_to(common).parts) + ".png" for p in parts}
    assert {p.name for p in (tmp_path / "plots").glob("*.png")} == expected and len(expected) == 2
    refused(["predict", corpus["run"], corpus["wav"], corpus["wav"], "--plot", tmp_path / "again"],
            "two outputs of this command would share this file", tmp_path)
    png = tmp_path / "mine.png"
    png.write_bytes(b"\x89PNG my picture")
    refused(["predict", corpus["run"], corpus["wav"], "--plot", png], "mine.png: exists", tmp_path)


def test_prepare_force_replaces_only_a_corpus_prepare_wrote(corpus, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.jsonl").write_text("my own manifest\n")
    prep = ["prepare", "synthetic", "--root", corpus["audio"], "--out", mine]
    refused(prep, "already holds a prepared corpus", tmp_path)
    refused([*prep, "--force"], "manifest.jsonl: exists and was not written by copypaste-ser", tmp_path)
    ours = tmp_path / "ours"
    assert run_cli([str(a) for a in ["prepare", "synthetic", "--root", corpus["audio"], "--out", ours]])[0] == 0
    assert run_cli([str(a) for a in ["prepare", "synthetic", "--root", corpus["audio"], "--out", ours,
                                     "--force"]])[0] == 0


def test_train_fold_all_refuses_a_users_folder(corpus, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my results\n")
    (mine / "summary.json").write_text("{}")
    for force in ([], ["--force"]):
        refused(["train", "--data", corpus["data"], "--fold", "all", "--preset", "tiny", "--epochs", "1",
                 "--quiet", "--out", mine, *force], "is not a copypaste-ser run folder", tmp_path)


def test_force_on_a_run_like_user_folder_replaces_nothing_and_writes_no_marker(corpus, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(corpus["run"], mine)
    (mine / ".copypaste-ser-run").unlink()  # the tool's file names, but the user's folder
    for force in ([], ["--force"]):
        refused(["train", "--data", corpus["data"], "--preset", "tiny", "--epochs", "1", "--quiet",
                 "--out", mine, *force], "is not a copypaste-ser run folder", tmp_path)
    assert not (mine / ".copypaste-ser-run").exists()


# ---------------------------------------------------------------- report
def _results(path: Path, seeds: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["fold", "init", "training_data", "copypaste", "seed", "test", "weighted_f1", "uar", "accuracy",
            "best_epoch", "train_seconds", "f1_neutral", "f1_angry"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for fold in ("kfold-1", "kfold-2", "kfold-3"):
            for scheme in ("none", "n-cp"):
                for seed in seeds:
                    w.writerow([fold, "scratch", "clean", scheme, seed, "clean", 0.5 + 0.01 * seed, 0.5, 0.5, 3, 1.0,
                                0.4, 0.6])
    return path


def test_report_refuses_to_drop_rows_and_to_replace_without_force(tmp_path):
    three = _results(tmp_path / "a" / "results.csv", [0, 1, 2])
    two = _results(tmp_path / "b" / "results.csv", [1, 2])
    out = tmp_path / "report"
    assert run_cli(["report", str(three), "--out", str(out)])[0] == 0
    refused(["report", str(three), "--out", out], "report.md: exists; pass --force", tmp_path)
    refused(["report", two, "--out", out], "exists; pass --force", tmp_path)
    from copypaste_ser.errors import UserError
    from copypaste_ser.experiments.report import write_report
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match=r"would drop 6 of its rows \(e.g. kfold-1/scratch/clean/none/0/clean\)"):
        write_report([two], out, "t", update=True)  # a grid refreshing its report never loses rows
    assert tree_digest(tmp_path) == before
    refused(["report", two, "--out", out, "--update"], "would drop 6 of its rows", tmp_path)
    refused(["report", two, "--out", out, "--update", "--force"], "--force and --update: choose one", tmp_path)
    more = _results(tmp_path / "c" / "results.csv", [3])
    assert run_cli(["report", str(out), str(more), "--out", str(out), "--update"])[0] == 0  # its own rows + more
    assert sorted({r["seed"] for r in csv.DictReader(open(out / "results.csv"))}) == ["0", "1", "2", "3"]
    assert run_cli(["report", str(two), "--out", str(out), "--force"])[0] == 0  # said plainly: drop them
    (out / "report.md").write_text("my notes\n")
    refused(["report", three, "--out", out, "--force"], "was not written by copypaste-ser", tmp_path)


# ---------------------------------------------------------------- collapse warnings (issue 37)
def test_a_model_forced_onto_one_class_is_flagged_in_its_output_and_report(corpus, tmp_path, capsys):
    import torch

    from copypaste_ser.experiments.cross_validation import train_folds
    from copypaste_ser.experiments.report import write_report
    from copypaste_ser.metrics import prediction_warnings
    from copypaste_ser.training.config import make_config

    # the classifier's bias forced far onto 'sad': every answer is sad
    original = torch.nn.Linear.forward

    def forced(self, x):
        out = original(self, x)
        if out.shape[-1] == 4:
            out = out + torch.tensor([0.0, 0.0, 0.0, 1e4])
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Linear, "forward", forced)
        train_folds(make_config("tiny", data=str(corpus["data"]), epochs=1, threads=1), tmp_path / "runs",
                    "default", seeds=[0], progress=False)
    err = capsys.readouterr().err
    assert "collapsed: 100 % of the" in err and "test answers are 'sad'" in err
    rows = list(csv.DictReader(open(tmp_path / "runs" / "results.csv")))
    assert rows[0]["warnings"].startswith("collapsed: 100 %")
    report = write_report([tmp_path / "runs" / "results.csv"], tmp_path / "report", "t").read_text()
    assert "## Warnings" in report and "default / scratch / clean / none / seed 0: collapsed" in report
    # balanced answers on balanced data, and close dev/test scores, raise nothing
    fine = {"confusion": [[5, 1], [1, 5]], "labels": ["a", "b"], "weighted_f1": 0.83}
    assert prediction_warnings(fine, 0.80) == []
    assert prediction_warnings(fine, 0.40) == ["dev and test disagree: dev weighted F1 40.0 %, test 83.0 %"]


# ---------------------------------------------------------------- the reporting rule, text files
def test_report_states_the_rule_and_lists_cells_that_fall_short(tmp_path):
    rule = Path(__file__).resolve().parents[1] / "docs" / "protocol" / "reporting-rule.yaml"
    short = _results(tmp_path / "a" / "results.csv", [0, 1])
    text = run_cli(["report", str(short), "--out", str(tmp_path / "r"), "--rule", str(rule)])
    assert text[0] == 0, text[1]
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Reporting rule" in report and "headline scheme n-cp" in report
    assert "- scratch / clean / n-cp / kfold-1: seeds 0, 1, the rule asks 0, 1, 2" in report
    assert "- scratch / clean: schemes se-cp, n+se-cp not run" in report
    full = _results(tmp_path / "b" / "results.csv", [0, 1, 2])
    assert run_cli(["report", str(full), "--out", str(tmp_path / "r2"), "--rule", str(rule)])[0] == 0
    assert "- scratch / clean / none" not in (tmp_path / "r2" / "report.md").read_text()
    (tmp_path / "bad.yaml").write_text("just: text\n")
    refused(["report", full, "--out", tmp_path / "r3", "--rule", tmp_path / "bad.yaml"],
            "bad.yaml: not a reporting rule", tmp_path)


@pytest.mark.parametrize("data, expect", [
    ("path,label\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    ("path,label,speaker\nä.wav,wut,s1\n".encode("latin-1"), "is not UTF-8 (byte 0xe4 at offset 19"),
    (b"\x00\x01\x02binary", "it looks like binary data"),
])
def test_text_that_is_not_utf8_is_one_line_naming_the_file(tmp_path, data, expect):
    from copypaste_ser.errors import UserError
    from copypaste_ser.files.textio import read_text

    (tmp_path / "list.csv").write_bytes(data)
    with pytest.raises(UserError, match=str(tmp_path / "list.csv").replace(".", r"\.")) as e:
        read_text(tmp_path / "list.csv")
    assert expect in str(e.value)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfpath,label\n")
    assert read_text(tmp_path / "bom.csv") == "path,label\n"


def test_prepare_names_a_csv_list_that_is_not_utf8(corpus, tmp_path):
    lst = write_list(corpus, tmp_path / "list.csv")
    lst.write_bytes(lst.read_text().encode("utf-16"))
    refused(["prepare", "folder", "--csv", lst, "--label-map", LABEL_MAP, "--out", tmp_path / "data"],
            "list.csv: is UTF-16 text; save it as UTF-8", tmp_path)


def test_plus_minus_is_the_seed_spread_within_folds_and_uar_is_beside_it(tmp_path):
    from copypaste_ser.experiments.report import PLUS_MINUS, seed_spread, write_report

    mean, spread = seed_spread({("f1", 0): 0.5, ("f1", 1): 0.7, ("f2", 0): 0.9, ("f2", 1): 0.9})
    assert mean == pytest.approx(75.0) and spread == pytest.approx(0.2 / 2 ** 0.5 * 100 / 2)
    text = write_report([_results(tmp_path / "a" / "results.csv", [0, 1, 2])], tmp_path / "r", "t").read_text()
    assert PLUS_MINUS in text
    # seeds 0, 1, 2 score 50, 51, 52 in every fold: mean 51, within-fold std 1 (not the spread of all runs)
    assert "| Clean | 51.00 ± 1.00 |" in text and "UAR (%), mean over folds of the seed means" in text


def test_report_prints_the_papers_numbers_beside_ours(tmp_path):
    rows = _results(tmp_path / "a" / "results.csv", [0, 1, 2])
    assert run_cli(["report", str(rows), "--out", str(tmp_path / "r"), "--paper", "crema-d"])[0] == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| the paper, Table 2, Clean | 71.46 | 74.34 |" in text  # scratch: No CP, N-CP columns
    refused(["report", rows, "--out", tmp_path / "r2", "--paper", "crema"], "--paper 'crema': choose one of", tmp_path)


def test_a_grid_refuses_a_users_out_folder_and_adopts_an_earlier_grid_folder(tmp_path):
    import yaml

    from copypaste_ser.errors import UserError
    from copypaste_ser.experiments.grid import claim_grid_folder

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my table\n")
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match="is not a copypaste-ser grid folder"):
        claim_grid_folder(mine)
    assert tree_digest(tmp_path) == before
    old = tmp_path / "old-grid"  # made before the marker: its grid.yaml names it as out
    old.mkdir()
    (old / "grid.yaml").write_text(yaml.safe_dump({"out": str(old), "data": "x"}))
    claim_grid_folder(old)
    assert json.loads((old / ".copypaste-ser-run").read_text())["kind"] == "grid"
    elsewhere = tmp_path / "copied"
    shutil.copytree(old, elsewhere)
    (elsewhere / ".copypaste-ser-run").unlink()
    with pytest.raises(UserError, match="is not a copypaste-ser grid folder"):
        claim_grid_folder(elsewhere)  # its grid.yaml names another folder


def test_a_label_mapped_twice_is_refused_naming_both_targets(corpus, tmp_path):
    lst = write_list(corpus, tmp_path / "list.csv")
    refused(["prepare", "folder", "--csv", lst, "--label-map", LABEL_MAP + ",w=sad", "--out", tmp_path / "data"],
            "--label-map: 'w' is mapped twice ('angry' and 'sad'); keep one", tmp_path)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("bad", ["high", "", "nan", "1.7"])
def test_report_names_a_results_row_whose_score_is_not_a_score(tmp_path, bad):
    path = _results(tmp_path / "a" / "results.csv", [0])
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[6] = bad
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    refused(["report", path, "--out", tmp_path / "r"], "results.csv:4: weighted_f1 is", tmp_path)
