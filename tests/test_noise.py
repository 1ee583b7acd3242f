"""The course's one noise rule (kd.noise): paired over seeds where both arms ran the same seeds, else one number each
against its standard error; a verdict never comes from missing runs."""
import math

import kd
import pytest
from kd import noise


def test_paired_is_a_t_interval_over_the_seed_differences():
    v = noise.paired([80.0, 81.0, 82.0], [79.0, 79.5, 80.0])  # differences 1.0, 1.5, 2.0
    assert v.diff == pytest.approx(1.5) and v.pairs == 3 and v.rule == "paired"
    assert v.margin == pytest.approx(4.303 * 0.5 / math.sqrt(3), rel=1e-4)
    assert v.verdict == "gain" and str(v) == "+1.5 ± 1.2 (gain)"
    assert noise.paired([79.0, 79.5], [80.0, 81.0]).verdict == "tie"  # two pairs: t = 12.7, wide
    assert noise.paired([70.0, 70.5, 71.0], [80.0, 80.4, 81.1]).verdict == "loss"


def test_pairing_removes_what_both_arms_share():
    """Seeds that move both arms together (a lucky copy, a lucky data order) cancel in the paired differences; the
    same numbers compared as unpaired means would tie."""
    single = [75.0, 78.0, 81.0]
    distilled = [s + 1.0 for s in single]
    assert noise.compare(distilled, single).verdict == "gain"
    unpaired = noise.single(sum(distilled) / 3, sum(single) / 3, noise.mean_noise(distilled, 0.0),
                            noise.mean_noise(single, 0.0))
    assert unpaired.verdict == "tie"


def test_one_run_each_uses_the_test_sets_standard_error():
    se = noise.share_se(0.8, 1000)
    assert se == pytest.approx(math.sqrt(0.16 / 1000))
    v = noise.compare([0.82], [0.80], noise.share_se(0.82, 1000), se)
    assert v.rule == "single" and v.margin == pytest.approx(2 * math.hypot(noise.share_se(0.82, 1000), se))
    assert v.verdict == "tie"
    assert noise.compare([0.85], [0.80], noise.share_se(0.85, 1000), se).verdict == "gain"


def test_no_runs_is_an_error_that_names_the_fix_never_a_tie():
    with pytest.raises(ValueError, match="run the control"):
        noise.compare([0.8, 0.81], [])
    with pytest.raises(ValueError, match="at least two"):
        noise.paired([0.8], [0.7])


def test_the_t_table_is_students():
    assert noise.t975(1) == pytest.approx(12.706) and noise.t975(2) == pytest.approx(4.303)
    assert noise.t975(23) == pytest.approx(2.069) and noise.t975(100) == pytest.approx(1.96)


def test_every_verdict_in_the_course_comes_from_kd_noise():
    """No second rule: the old margins are gone and the report and poster read kd.noise's verdicts."""
    assert not hasattr(kd.lesson, "tie_margin") and not hasattr(kd.lesson, "pair_margin")
    typst = "".join(p.read_text() for p in [kd.REPO / "report" / "common.typ", kd.REPO / "report" / "report.typ",
                                             kd.REPO / "poster" / "poster.typ"])
    assert "classic_gain_sd" not in typst and "2 * calc.max" not in typst
    assert "derived.classic_verdict" in typst and "derived.ablation_verdict" in typst


def test_a_verdict_read_back_from_a_record_prints_as_it_did():
    v = noise.paired([80.0, 81.0, 82.0], [79.0, 79.5, 80.0])
    back = noise.Verdict.from_dict(v.as_dict())
    assert back == v and str(back) == str(v)
