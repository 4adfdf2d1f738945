"""gan_lab's Optuna sweeper on tiny studies over synthetic data."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from gan_lab import tags
from gan_lab.config.compose import compose
from gan_lab.errors import GanLabError
from gan_lab.search.space import parse_space
from gan_lab.search.study import SETTINGS, build, open_storage
from gan_lab.sweep.optuna_sweeper import heartbeat, requeue_interrupted
from tests.helpers.cli import run_cli
from tests.helpers.configs import with_defaults
from tests.helpers.metrics import stand_in_metrics
from tests.helpers.tracking import runs_of, tracked_sweep


def _study(journal, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(str(journal)))


def test_the_search_space_speaks_hydras_override_grammar():
    space = parse_space(
        {
            "optim.lr": "tag(log, interval(1e-5, 1e-3))",
            "train.batch_size": "choice(10, 64, 256)",
            "model.generator.filters": "choice([128,64,32],[128,64,64])",
            "init": "choice(normal, he_normal)",
            "optim.betas": "[0.5,0.999]",
        },
        ["train.epochs=range(10,30,step=10)", "data=synthetic"],
    )
    lr = space.distributions["optim.lr"]
    assert (lr.low, lr.high, lr.log) == (1e-5, 1e-3, True)
    assert space.distributions["train.batch_size"].choices == ("10", "64", "256")
    assert space.distributions["model.generator.filters"].choices == ("[128,64,32]", "[128,64,64]")
    assert space.distributions["train.epochs"].choices == ("10", "20")
    assert space.fixed == ["optim.betas=[0.5,0.999]", "data=synthetic"]
    params = {"optim.lr": 1e-4, "model.generator.filters": "[128,64,64]", "init": "he_normal"}
    config = compose(*space.overrides(params))  # every override composes into a valid config
    assert config.model.generator.filters == [128, 64, 64] and config.init.name == "he_normal"


SEARCH = [
    "-m",
    "hydra/sweeper=gan_lab_optuna",
    "hydra.sweeper.study_name=s",
    "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:2,n_warmup_steps:2}",
    "optim.lr=0.002",
    "optim.lr_g=choice(0.002,0.001,1e-12)",
    "init.std=choice(0.02,1e+30)",
]
TRIAL_RUN = [
    "metrics=standard",
    "metrics.every=1",
    "metrics.num_samples=64",
    "metrics.kid_subset_size=32",
    "data.num_images=192",
    "train.epochs=3",
]


def test_an_integer_interval_is_an_integer_distribution():
    space = parse_space({"train.batch_size": "int(interval(16, 128))"}, [])
    batch = space.distributions["train.batch_size"]
    assert isinstance(batch, IntDistribution) and (batch.low, batch.high) == (16, 128)
    assert compose(*space.overrides({"train.batch_size": 48})).train.batch_size == 48


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ({"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1}, "HyperbandPruner"),
        ({"_target_": "optuna.pruners.PercentilePruner", "percentile": 25.0}, "PercentilePruner"),
        (
            {
                "_target_": "optuna.pruners.PatientPruner",
                "wrapped_pruner": {"_target_": "optuna.pruners.MedianPruner"},
                "patience": 2,
            },
            "PatientPruner",
        ),
        ({"_target_": "optuna.samplers.RandomSampler", "seed": 3}, "RandomSampler"),
    ],
)
def test_samplers_and_pruners_are_optuna_classes_given_by_target(spec, kind):
    assert type(build("hydra.sweeper.pruner", spec)).__name__ == kind


@pytest.mark.integration
def test_a_pruner_given_on_the_command_line_replaces_the_default_whole(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli(
        monkeypatch,
        "-m",
        "hydra/sweeper=gan_lab_optuna",
        "hydra.sweeper.study_name=h",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.objective=d_loss_real",
        "hydra.sweeper.pruner={_target_:optuna.pruners.HyperbandPruner,min_resource:1}",
        "hydra.sweeper.sampler={_target_:optuna.samplers.RandomSampler,seed:3}",
        "optim.lr=interval(1e-4,1e-3)",
        *with_defaults("train.epochs=1"),
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    study = _study(tmp_path / "studies" / "h.journal", "h")
    pruner = {"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1}
    assert study.user_attrs[SETTINGS]["pruner"] == pruner  # not merged into the median's
    assert study.trials[0].state == TrialState.COMPLETE


@pytest.mark.integration
def test_a_sampler_or_pruner_that_cannot_be_built_is_one_line():
    with pytest.raises(GanLabError, match="hydra.sweeper.pruner: cannot build optuna.pruners.No"):
        build("hydra.sweeper.pruner", {"_target_": "optuna.pruners.NoSuchPruner"})
    with pytest.raises(GanLabError, match="names no class"):
        build("hydra.sweeper.sampler", {"seed": 1})


def test_a_search_without_multirun_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = _refused(monkeypatch, capsys, "search=quick", *with_defaults())
    assert code == 2
    assert err.splitlines()[-1].endswith("add -m (gan-lab -m search=quick ...)")


@pytest.mark.integration
@pytest.mark.parametrize("objective", ["fid", "best_fid"])
def test_a_study_prunes_a_hopeless_trial_survives_a_failing_one_and_resumes(
    tmp_path, monkeypatch, objective
):
    """Trials 0 and 1 train; trial 2's generator cannot learn (lr_g 1e-12) and is pruned at epoch
    2 of 3; trial 3 diverges (weights drawn with std 1e30) and fails. The same command with
    n_trials=5 then runs one trial more instead of starting over. The objective is the last FID
    or the best so far."""
    monkeypatch.chdir(tmp_path)
    stand_in_metrics(monkeypatch)
    journal = tmp_path / "studies" / "s.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    for lr_g, std in (("0.002", "0.02"), ("0.001", "0.02"), ("1e-12", "0.02"), ("0.002", "1e+30")):
        study.enqueue_trial({"optim.lr_g": lr_g, "init.std": std})
    args = [*SEARCH, *with_defaults(*TRIAL_RUN), f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    args.append(f"hydra.sweeper.objective={objective}")
    run_cli(monkeypatch, *args, "hydra.sweeper.n_trials=4")
    trials = _study(journal).trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ]
    assert max(trials[2].intermediate_values) == 2  # stopped after epoch 2 of 3
    assert trials[3].user_attrs["reason"] == "diverged"
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    best = _study(journal).best_trial  # as Hydra's own Optuna sweeper writes it
    assert (results["best_params"], results["best_value"]) == (best.params, best.value)

    run_cli(monkeypatch, *args, "hydra.sweeper.n_trials=5")
    resumed = _study(journal).trials
    assert len(resumed) == 5 and resumed[4].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert [t.state for t in resumed[:4]] == [t.state for t in trials]


@pytest.mark.integration
def test_an_interrupted_trial_runs_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "studies" / "s.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    interrupted = study.ask({"optim.lr_g": optuna.distributions.FloatDistribution(1e-4, 1e-3)})
    args = [
        "-m",
        "hydra/sweeper=gan_lab_optuna",
        "hydra.sweeper.study_name=s",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.objective=d_loss_real",
        "optim.lr_g=interval(1e-4,1e-3)",
        *with_defaults("train.epochs=1"),
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    run_cli(monkeypatch, *args)
    trials = _study(journal).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == interrupted.params  # the same point, asked again


@pytest.mark.integration
@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("hydra.sweeper.n_jobs=2", "needs a parallel launcher"),
        ("hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner is given whole"),
    ],
)
def test_a_search_setting_that_cannot_work_is_one_line(
    tmp_path, monkeypatch, capsys, setting, said
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        run_cli(
            monkeypatch,
            "-m",
            "hydra/sweeper=gan_lab_optuna",
            setting,
            "optim.lr=interval(1e-4,1e-3)",
            *with_defaults(),
        )
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err


@pytest.mark.slow
def test_trials_run_in_parallel_through_the_joblib_launcher_as_child_runs(tmp_path):
    client, parent, children = tracked_sweep(
        tmp_path,
        "hydra/sweeper=gan_lab_optuna",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.study_name=p",
        "hydra.sweeper.objective=d_loss_real",
        "optim.lr=tag(log,interval(1e-4,1e-2))",
        "train.batch_size=8",
        "tracking.log_model=false",
    )
    study = _study(tmp_path / "studies" / "p.journal", "p")
    trials = study.trials
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(int(r.data.tags[tags.TRIAL]) for r in children) == [0, 1, 2, 3]
    runs = {int(r.data.tags[tags.TRIAL]): r.info.run_id for r in children}
    assert {t.number: t.user_attrs["mlflow_run_id"] for t in trials} == runs
    assert study.sampler._constant_liar  # TPE spreads trials that run at once


def _refused(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`gan-lab <args>` in this process, which exits: its status and what it said on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_cli(monkeypatch, *args)
    return exited.value.code, capsys.readouterr().err.strip()


def _search_args(tmp_path, *extra: str) -> list[str]:
    return [
        "-m",
        "hydra/sweeper=gan_lab_optuna",
        "hydra.sweeper.study_name=s",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.objective=d_loss_real",
        "optim.lr=interval(1e-4,1e-3)",
        *with_defaults("train.epochs=1", *extra),
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]


def test_a_second_search_of_a_study_that_runs_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    from filelock import FileLock

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    with FileLock(str(tmp_path / "studies" / "s.lock")):  # as a first search holds it
        code, err = _refused(monkeypatch, capsys, *_search_args(tmp_path))
    assert code == 2
    assert err.splitlines() == [
        "gan-lab: error: study s is being run by another search (lock studies/s.lock): wait "
        "for it to end, or give this one another hydra.sweeper.study_name"
    ]


def test_a_study_whose_name_shares_a_stem_with_a_running_one_is_not_refused(tmp_path, monkeypatch):
    from filelock import FileLock

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    with FileLock(str(tmp_path / "studies" / "s.lock")):  # study s runs
        run_cli(monkeypatch, *_search_args(tmp_path, "hydra.sweeper.study_name=s.v2"))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda text: text[:-25], "ends in a torn line"),
        (lambda text: "garbage{{\n" + text, "cannot be read (JSONDecodeError"),
    ],
)
def test_a_damaged_journal_is_one_line_and_left_as_it_is(
    tmp_path, monkeypatch, capsys, damage, says, store
):
    journal = tmp_path / "studies" / "s.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    journal.write_text(damage(journal.read_text()))
    before = journal.read_bytes()
    args = _search_args(tmp_path, "tracking=mlflow", f"tracking.uri={store}")
    code, err = _refused(monkeypatch, capsys, *args)
    assert code == 2
    (line,) = err.splitlines()
    assert says in line and str(journal.relative_to(tmp_path)) in line
    assert journal.read_bytes() == before  # never made worse
    _, runs = runs_of(store)
    assert runs == []  # refused before its parent run was created: no empty FAILED one


@pytest.mark.slow
def test_a_second_search_of_a_sqlite_study_from_another_folder_refuses_in_one_line(
    tmp_path, monkeypatch, capsys
):
    """The lock lives beside the database, not in the folder a search starts from: a second
    search of the running study, started elsewhere, stops at once and leaves the first alone."""
    db = tmp_path / "optuna.db"
    storage = f"hydra.sweeper.storage=sqlite:///{db}"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir(), second_dir.mkdir()
    first = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", *_search_args(first_dir, storage, "train.epochs=3")],
        cwd=first_dir,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (first_dir / "sweep" / "0" / ".hydra").exists():  # its trial runs
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
        time.sleep(0.2)
    monkeypatch.chdir(second_dir)
    code, err = _refused(monkeypatch, capsys, *_search_args(second_dir, storage))
    assert code == 2
    (line,) = err.splitlines()
    assert f"study s is being run by another search (lock {db}.s.lock)" in line
    assert first.wait(timeout=600) == 0, first.stderr.read()
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").trials
    assert trial.state == TrialState.COMPLETE  # never run twice, never told twice


@pytest.mark.integration
def test_on_a_storage_with_heartbeats_only_a_trial_whose_heartbeat_stopped_runs_again(tmp_path):
    """A database server's study may be driven by two searches at once: the trial that one of
    them is running keeps beating and is left alone; a trial of a search that died is requeued."""
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=2
    )
    study = optuna.create_study(study_name="s", storage=storage)
    dead, alive = study.ask(), study.ask()
    for trial in (dead, alive):
        trial.suggest_float("x", 0, 1)
        storage.record_heartbeat(trial._trial_id)
    with heartbeat(study, alive):  # as the other search does while its job runs
        time.sleep(3.5)
        assert requeue_interrupted(study) == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[dead.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert queued.user_attrs["requeued_from"] == dead.number
