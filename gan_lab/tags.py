"""Every MLflow tag gan_lab writes or reads, in one table."""

# A run: what it is and where it ran
OVERRIDES = "gan_lab.overrides"  # the job's command-line overrides
EXPERIMENT = "gan_lab.experiment"  # the seed experiment it ran (conf/experiment), if any
RECIPE = "gan_lab.recipe"  # the recipe (conf/recipe): seed, modern, or one component
JOB = "gan_lab.job"  # its job number in a multirun
TRIAL = "gan_lab.trial"  # its trial number in a search
STUDY = "gan_lab.study"  # the search's Optuna study
SWEEP_ID = "gan_lab.sweep_id"  # the sweep folder: the same on a sweep's parent and children
SWEPT = "gan_lab.swept"  # the keys the sweep varies ("optim.lr,train.batch_size")
SWEPT_VALUES = "gan_lab.swept_values"  # a job's values of them, JSON: {"optim.lr": "1e-4"}
CONFIG_DIR = "gan_lab.config_dir"  # the --config-dir the run was composed with, if any
IMAGES = "gan_lab.images"  # how many training images the run's data set has
HOLDOUT = "gan_lab.holdout"  # the held-out images scored against (data.holdout; holdout.json)
VERSION = "gan_lab.version"
DEVICE = "gan_lab.device"
PRECISION = "gan_lab.precision"  # what train.precision (auto) resolved to on the device
CUDA_VISIBLE_DEVICES = "gan_lab.cuda_visible_devices"  # which GPU Ray or SLURM gave the job
SLURM_JOB = "gan_lab.slurm_job"  # its SLURM job ("1234_0" in an array, as submitit names it)
REQUEUES = "gan_lab.requeues"  # how many times SLURM requeued it (time limit, preemption)
RAY_NODE = "gan_lab.ray_node"  # the Ray node it ran on (its node id)
G_PARAMS = "gan_lab.g_params"  # trainable parameters of the generator
D_PARAMS = "gan_lab.d_params"
MODEL_EPOCH = "gan_lab.model_epoch"  # the epoch of the logged generator (its best FID's)
MODEL_URI = "gan_lab.model_uri"  # the logged generator: models:/<model id> (load, serve)
OUTCOME = "gan_lab.outcome"  # how the run ended: gan_lab.outcome.Outcome as JSON

# A sweep's parent run
KIND = "gan_lab.kind"  # "sweep" on a parent run
SWEEP_OVERRIDES = "gan_lab.sweep_overrides"  # the sweep's command line
SWEEPER = "gan_lab.sweeper"
LAUNCHER = "gan_lab.launcher"
SUMMARY = "gan_lab.summary"  # "3 finished, 1 pruned" when the sweep ends
# A search's parent: a digest of its study's storage and name, by which a search run again finds
# the parent to continue (and with it, STUDY: the study's name)
STUDY_KEY = "gan_lab.study_key"

# Written by gan_lab 0.1 in place of OUTCOME; read so that old runs keep their endings
LEGACY_STOPPED_EARLY = "gan_lab.stopped_early"  # a pruned trial
LEGACY_ERROR = "gan_lab.error"  # a failed run's error

# MLflow's own
PARENT_RUN_ID = "mlflow.parentRunId"
GIT_COMMIT = "mlflow.source.git.commit"
