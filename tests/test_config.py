import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from genaug.config import config_from_dict, load_config
from genaug.errors import ConfigError


def test_defaults_then_profile_then_flags(tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text("gan:\n  epochs: 7\n  lr: 0.001\nrun:\n  seed: 5\n")
    cfg = load_config(str(prof), {"gan": {"epochs": 3, "lr": None}})
    assert cfg.gan.epochs == 3 and cfg.gan.lr == 0.001 and cfg.run.seed == 5
    assert cfg.gan.nz == 100  # untouched default


def test_profiles_given_together_apply_in_order_and_a_bad_value_names_its_file(tmp_path):
    # `--profile demo --config mine.yaml`: before session 70 the option kept its last value, mine.yaml, and the
    # demo profile was dropped without a word
    mine = tmp_path / "mine.yaml"
    mine.write_text("gan:\n  epochs: 7\nbenchmark:\n  lr: 0.01\n")
    cfg = load_config(["demo", str(mine)], {"gan": {"epochs": 3}})
    demo = load_config("demo")
    assert (cfg.gan.epochs, cfg.benchmark.lr) == (3, 0.01)   # the flag over both files, mine.yaml over demo
    assert (cfg.data.demo_train, cfg.benchmark.image_size) == (demo.data.demo_train, demo.benchmark.image_size)
    assert cfg.benchmark.image_size != load_config().benchmark.image_size   # demo's own value, not a default
    bad = tmp_path / "bad.yaml"
    bad.write_text("benchmark:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"'benchmark.lr' must be positive, got -1.0 \(set in .*bad.yaml\)$"):
        load_config([str(mine), str(bad)])
    assert load_config([str(bad), str(mine)]).benchmark.lr == 0.01   # overridden before it is checked


@pytest.mark.parametrize("text,match", [
    ("gan:\n  epoch: 3\n", "unknown key 'gan.epoch' \\(did you mean 'gan.epochs'\\? known: "),
    ("gans:\n  epochs: 3\n", "unknown section 'gans' \\(did you mean 'gan'\\? known: "),
    ("gan:\n  zzz: 3\n", "unknown key 'gan.zzz' \\(known: "),
    # a misspelt choice is named; an unrelated word is not
    ("benchmark:\n  schedule: cosin\n", "'benchmark.schedule' must be one of cosine, step, exponential, onecycle, "
                                        "constant, got 'cosin'; did you mean 'cosine'\\? \\(set in .*bad.yaml\\)$"),
    ("data:\n  task: 3-class\n", "'data.task' must be one of binary, 3class, got '3-class'; did you mean '3class'\\? \\(set in .*bad.yaml\\)$"),
    # a choice grown into a longer word, too far from it for difflib
    ("data:\n  resize: padding\n", "'data.resize' must be one of squash, crop, pad, got 'padding'; did you mean 'pad'\\? "),
    ("data:\n  resize: Cropped\n", "got 'Cropped'; did you mean 'crop'\\? "),
    ("data:\n  resize: center-crop\n", "got 'center-crop'; did you mean 'crop'\\? "),
    ("gan:\n  conditioning: labels\n", "'gan.conditioning' must be one of channels, acgan, got 'labels' \\(set in .*bad.yaml\\)$"),
    ("benchmark:\n  augmentations: flp,rotate\n", "unknown augmentation flp; did you mean flip\\? \\(known: flip,"),
    ("benchmark:\n  gan_run: [a, b]\n", "'benchmark.gan_run' expects str, got \\['a', 'b'\\]"),   # not a list key
    ("benchmark:\n  models: [cnn, [resnet34]]\n", "'benchmark.models' expects str"),
    ("gan:\n  epochs: many\n", "'gan.epochs' expects int"),
    ("gan:\n  epochs: -1\n", "'gan.epochs' must be positive"),
    ("gan: [1, 2\n", "not valid YAML: expected ',' or ']', but got '<stream end>' \\(line 2, column 1\\)$"),
    # PyYAML keeps the last of two equal keys, so the first setting would be dropped unseen
    ("benchmark:\n  epochs: 2\n  epochs: 3\n", "not valid YAML: 'epochs' is given twice \\(lines 2 and 3\\)$"),
    ("benchmark:\n  epochs: 2\ngan:\n  epochs: 2\nbenchmark:\n  seeds: 3\n", "'benchmark' is given twice \\(lines 1 and 5\\)"),
    ("? [a, b]\n: 1\n", "not valid YAML: found unhashable key \\(line 1, column 3\\)$"),
    ("benchmark:\n\tepochs: 2\n", "found character '\\\\t' that cannot start any token \\(line 2, column 1\\); indent with "
                                  "spaces, not tabs$"),
    ("data:\n  val_fraction: 1.5\n", "data.val_fraction"),
    ("benchmark:\n  early_stop_after: 1.5\n", "benchmark.early_stop_after"),
    ("gan:\n  fid_bootstrap: 1\n", "'gan.fid_bootstrap' must be 0 \\(none\\) or from 2 to 10000"),
    # bounds that, unchecked, trained for nothing or failed only once every cell had trained
    ("encode:\n  epochs: 0\n", "'encode.epochs' must be positive, got 0"),
    ("benchmark:\n  bootstrap: 0\n", "'benchmark.bootstrap' must be from 10 to 100000 resamplings, got 0"),
    # found in session 72: a slip of a few zeros trained every cell, then resampled for days in the report
    ("benchmark:\n  bootstrap: 100000000\n", "'benchmark.bootstrap' must be from 10 to 100000 resamplings, got 100000000"),
    # found in session 72: --seeds 1000000000 planned a billion cells, using up memory before any trained, and was
    # told to lower --image-size or --batch-size; the demo's image count alike
    ("benchmark:\n  seeds: 1000000000\n", "'benchmark.seeds' must be from 1 to 1000 \\(repeats of each cell\\), got 1000000000"),
    ("data:\n  demo_train: 1000000000\n", "'data.demo_train' must be from 1 to 100000"),
    ("gan:\n  fid_bootstrap: 100000000\n", "'gan.fid_bootstrap' must be 0 \\(none\\) or from 2 to 10000 resamplings"),
    ("benchmark:\n  patience: 0\n", "'benchmark.patience' must be positive"),
    ("benchmark:\n  latent_epochs: -1\n", "'benchmark.latent_epochs' must be >= 0"),
    ("run:\n  seed: -1\n", "'run.seed' must be from 0 to 4294967295, got -1"),
    ("data:\n  split_seed: 4294967296\n", "'data.split_seed' must be from 0 to 4294967295"),
    ("run:\n  name: ../elsewhere\n", "'run.name'\\) must be a plain name, without '/', got '../elsewhere'"),
    ("benchmark:\n  label_smoothing: 1.0\n", "'benchmark.label_smoothing' must be in \\[0, 1\\), got 1.0"),
    ("benchmark:\n  mixup: -0.2\n", "'benchmark.mixup' must be >= 0"),
    ("benchmark:\n  ema: 1.0\n", "'benchmark.ema' must be in \\[0, 1\\)"),
    ("gan:\n  conditioning: acgan\n  aux_weight: 0\n", "'gan.aux_weight' is 0 with gan.conditioning acgan, which "
                                                      "leaves the GAN no class signal"),
    ("gan:\n  beta1: 1.0\n", "'gan.beta1' must be in \\[0, 1\\), got 1.0"),
    ("gan:\n  real_label: 0\n", "'gan.real_label' must be in \\(0, 1\\]"),
    ("gan:\n  nearcopy_quantile: 1\n", "'gan.nearcopy_quantile' must be in \\(0, 1\\)"),
    # nan passes every comparison and inf passes ">= 0"; YAML reads .nan/.inf as floats, flags as strings
    ("benchmark:\n  lr: .nan\n", "'benchmark.lr' must be a finite number, got nan"),
    ("benchmark:\n  lr: nan\n", "'benchmark.lr' must be a finite number, got 'nan'"),
    ("benchmark:\n  synthetic_ratio: .inf\n", "'benchmark.synthetic_ratio' must be a finite number, got inf"),
    ("gan:\n  max_loss: -.inf\n", "'gan.max_loss' must be a finite number"),
    ("run:\n  state_every_s: -1\n", "'run.state_every_s' must be >= 0 \\(0: after every epoch\\), got -1.0"),
    ("benchmark:\n  model_epochs: resnet34\n", "'benchmark.model_epochs' must be model=epochs pairs like resnet34=12"),
    ("benchmark:\n  model_epochs: resnet34=0\n", "'benchmark.model_epochs' must be model=epochs pairs"),
    ("benchmark:\n  model_epochs: resnet34=1.5\n", "'benchmark.model_epochs' must be model=epochs pairs"),
    # a file saved in another encoding ended in a UnicodeDecodeError traceback (session 58)
    ("run:\n  name: r\xe9sum\xe9\n".encode("latin-1"), "config file .*bad.yaml is not UTF-8 text \\(byte 0xe9 on "
                                                        "line 2\\); save it as UTF-8$"),
    ("benchmark:\n  epochs: 3\n".encode("utf-16"), "not UTF-8 text \\(byte 0xff on line 1\\)"),
])
def test_bad_config_names_the_key(tmp_path, text, match):
    prof = tmp_path / "bad.yaml"
    prof.write_bytes(text) if isinstance(text, bytes) else prof.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(str(prof))


def test_a_bad_value_says_where_it_was_set(tmp_path):
    # "config key 'benchmark.epochs' must be positive" left the user to guess which of the profile and
    # the flags to mend
    prof = tmp_path / "p.yaml"
    prof.write_text("benchmark:\n  epochs: 0\n  patience: 2\n")
    with pytest.raises(ConfigError, match=r"^config key 'benchmark.epochs' must be positive, got 0 "
                                          r"\(set in .*p.yaml\)$"):
        load_config(str(prof), {"encode": {"epochs": 3}})
    with pytest.raises(ConfigError, match=r"^config key 'benchmark.patience' must be positive, got 0 "
                                          r"\(set on the command line\)$"):
        load_config(str(prof), {"benchmark": {"epochs": 4, "patience": 0}})
    # where the caller says which flag set the key, the error names it
    with pytest.raises(ConfigError, match=r"got 0 \(set with --patience\)$"):
        load_config(str(prof), {"benchmark": {"epochs": 4, "patience": 0}}, {"benchmark.patience": "--patience"})
    # the flag that mends the profile's value is taken
    assert load_config(str(prof), {"benchmark": {"epochs": 4}}).benchmark.epochs == 4
    typo = tmp_path / "typo.yaml"
    typo.write_text("encode:\n  epochs: eleven\n")
    with pytest.raises(ConfigError, match=r"^.*typo.yaml: config key 'encode.epochs' expects int, got 'eleven'$"):
        load_config(str(typo))   # a value of the wrong type names the file too


def test_list_keys_may_be_written_as_yaml_lists(tmp_path):
    # `models: [cnn, resnet34]` was refused: "expects str"
    prof = tmp_path / "lists.yaml"
    prof.write_text("benchmark:\n  models: [cnn, resnet34]\n  variants:\n    - real\n    - mixed\n"
                    "  train_fractions: [0.25, 1.0]\n  model_epochs: {resnet34: 12, cnn: 8}\n")
    b = load_config(str(prof)).benchmark
    assert (b.models, b.variants, b.train_fractions) == ("cnn,resnet34", "real,mixed", "0.25,1.0")
    assert b.epochs_for("resnet34") == 12 and b.epochs_for("cnn") == 8


def test_unknown_profile():
    with pytest.raises(ConfigError, match=r"unknown profile 'no-such-profile': no configs/no-such-profile.yaml "
                                          r"\(profiles: cpu, demo, paper; or give a .yaml path\)"):
        load_config("no-such-profile")
    with pytest.raises(ConfigError, match="did you mean 'demo'\\?"):
        load_config("dmeo")
    # a profile's name in another case is that profile, as --models and --class are read; near it, suggested
    assert load_config("CPU").to_dict() == load_config("cpu").to_dict()
    with pytest.raises(ConfigError, match="unknown profile 'CPUS'.*did you mean 'cpu'\\?"):
        load_config("CPUS")
    # a profile's name written as a file that is not there is pointed to the name
    with pytest.raises(ConfigError, match="config file not found: cpu.yml; the profile 'cpu' is given by its name: "
                                          "--profile cpu$"):
        load_config("cpu.yml")


def test_config_that_is_not_a_yaml_file_is_named_as_such(tmp_path):
    """A folder, a file of another kind or a path that is not there were looked up as profile names,
    and the error read "no configs//tmp/x.yaml"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("benchmark:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=rf"^--config {run} is a folder; its config is {run}/config.yaml: "
                                          rf"--config {run}/config.yaml$"):
        load_config(str(run))
    with pytest.raises(ConfigError, match=rf"^--config {tmp_path} is a folder: give a .yaml file or a profile "
                                          r"name \(profiles: cpu, demo, paper\)$"):
        load_config(str(tmp_path))
    notes = tmp_path / "notes.txt"
    notes.write_text("benchmark:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=rf"^--config {notes} is not a .yaml file: a config is YAML in a file "
                                          r"ending .yaml or .yml, or a profile name \(profiles: cpu, demo, paper\)$"):
        load_config(str(notes))
    with pytest.raises(ConfigError, match=rf"^config file not found: {tmp_path}/gone \(profiles: cpu, demo, "
                                          r"paper; or give a .yaml path\)$"):
        load_config(str(tmp_path / "gone"))
    assert notes.read_text() == "benchmark:\n  epochs: 3\n"   # read, never altered


def test_a_yaml_alias_bomb_is_refused_in_a_short_line(tmp_path):
    """Found in session 73: YAML aliases nest lists without growing the file, and the error printed the value
    whole: this 4 KB profile gave a 720 KB error line, and with the nesting under the first key read, the
    message would have spelt out billions of entries."""
    k = 300
    prof = tmp_path / "nested.yaml"
    prof.write_text("benchmark:\n"
                    f"  variants: &a [{', '.join(['real'] * k)}]\n"
                    f"  models: &b [{', '.join(['*a'] * k)}]\n"
                    f"  augmentations: &c [{', '.join(['*b'] * k)}]\n")
    assert prof.stat().st_size < 5000
    with pytest.raises(ConfigError, match=r"config key 'benchmark.models' expects str, got \[\['real', ") as err:
        load_config(str(prof))
    assert len(str(err.value)) < 400, str(err.value)
    prof.write_text("benchmark:\n"
                    f"  variants: &a [{', '.join(['real'] * k)}]\n"
                    f"  model_epochs: {{cnn: [{', '.join(['*a'] * k)}]}}\n")
    with pytest.raises(ConfigError, match=r"config key 'benchmark.model_epochs' expects str, got \{'cnn': ") as err:
        load_config(str(prof))
    assert len(str(err.value)) < 400, str(err.value)


def test_yaml_is_read_safely(tmp_path):
    prof = tmp_path / "evil.yaml"
    prof.write_text("run: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(prof))


def test_a_saved_config_from_before_early_stop_after_keeps_stopping_from_epoch_one():
    # a resumed run must train its new cells with the rule its old cells were trained with
    saved = load_config().to_dict()
    del saved["benchmark"]["early_stop_after"]
    assert config_from_dict(saved).benchmark.early_stop_after == 0.0
    assert load_config().benchmark.early_stop_after == 0.5
    assert load_config().benchmark.min_epochs(12) == 6 and load_config().benchmark.min_epochs(1) == 0
    saved["benchmark"]["early_stop_after"] = 0.25
    assert config_from_dict(saved).benchmark.early_stop_after == 0.25


@pytest.mark.parametrize("given,match", [
    ({"data": {"data": "other/folder"}}, "made with data.data='saved/folder'"),
    ({"run": {"seed": 3}}, "made with run.seed=0; a resumed run keeps it"),
    ({"encode": {"epochs": 40}}, "made with encode.epochs=16"),
    ({"gan": {"ngf": 32}}, "made with gan.ngf=64"),
])
def test_resume_refuses_flags_that_change_what_the_run_computes(given, match):
    from genaug.config import resumed_settings
    saved = load_config(None, {"data": {"data": "saved/folder"}, "encode": {"epochs": 16}})
    with pytest.raises(ConfigError, match=match):
        resumed_settings(saved, given, "RUN")


def test_more_images_of_a_gan_run_are_pointed_to_gan_sample():
    """Session 56: `gan --resume R --n 3000` was told only to start a new run, which trains the GAN again."""
    from genaug.config import resumed_settings
    saved = load_config(None, {"run": {"seed": 4}})
    with pytest.raises(ConfigError) as told:
        resumed_settings(saved, {"gan": {"n": 3000}}, "RUN")
    assert str(told.value) == ("run RUN was made with gan.n=1280; a resumed run keeps it (start a new run to use 3000; or "
                               "draw them from its generator: genaug gan sample --checkpoint RUN/generator-conditional.pt "
                               "--n 3000 --seed 4)")
    saved.gan.per_class = True
    with pytest.raises(ConfigError, match=r"--checkpoint RUN/generator-<CLASS>\.pt --n 3000 --seed 4\)$"):
        resumed_settings(saved, {"gan": {"n": 3000}}, "RUN")


def test_resume_takes_flags_that_change_only_how_the_run_runs(tmp_path, monkeypatch):
    from genaug.config import resumed_settings
    monkeypatch.chdir(tmp_path)
    saved = load_config(None, {"data": {"data": "saved/folder"}, "run": {"seed": 4, "name": "first"}})
    cfg = resumed_settings(saved, {
        "run": {"device": "cpu", "seed": 4, "out_root": "elsewhere", "name": "second", "tensorboard": None},
        "data": {"data": str(tmp_path / "saved" / "folder"), "cache_dir": "/fast/disk"},
        "encode": {"overwrite": True}}, "RUN")
    assert (cfg.run.device, cfg.data.cache_dir, cfg.encode.overwrite) == ("cpu", "/fast/disk", True)
    assert (cfg.run.seed, cfg.run.name, cfg.run.out_root, cfg.data.data) == (4, "first", "outputs", "saved/folder")
    assert saved.run.device == "auto" and saved.data.cache_dir == ""   # the saved config is not altered


@pytest.mark.parametrize("root_here,given_out,cache", [
    (True, None, ""),                          # the run's own root is here: its cache stays <root>/cache
    (False, None, "outputs/cache"),            # made on another machine: the default run root here
    (False, "mine", "mine/cache"),             # ... or the --out given
])
def test_a_resumed_runs_cache_stays_off_another_machines_paths(tmp_path, monkeypatch, root_here, given_out, cache):
    """A GPU machine's run, made under /tmp/tmp.X/runs there and reported here with --report-only, wrote a
    280 MiB decode cache to a new /tmp/tmp.X/runs/cache on this machine."""
    from genaug.config import resumed_settings
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    if root_here:
        root.mkdir()
    saved = load_config(None, {"run": {"out_root": str(root)}})
    cfg = resumed_settings(saved, {"run": {"out_root": given_out}}, "RUN")
    assert (cfg.data.cache_dir, cfg.run.out_root) == (cache, str(root))
    assert not (tmp_path / "outputs").exists() and root.exists() == root_here   # the check makes no folder
    # a --cache-dir given is kept wherever the root is
    cfg = resumed_settings(saved, {"data": {"cache_dir": "/fast/disk"}}, "RUN")
    assert cfg.data.cache_dir == "/fast/disk"


def test_relative_input_runs_are_saved_absolute_so_a_run_resumes_from_any_directory(tmp_path, monkeypatch):
    # a benchmark given --encode-run o/encode/X and resumed from another directory said "--encode-run
    # o/encode/X is not a directory" (found in session 53)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o" / "encode" / "X").mkdir(parents=True)
    (tmp_path / "o" / "gan" / "Y").mkdir(parents=True)
    cfg = load_config(None, {"benchmark": {"encode_run": "o/encode/X", "gan_run": "o/gan/Y"}})
    assert (cfg.benchmark.encode_run, cfg.benchmark.gan_run) == (str(tmp_path / "o" / "encode" / "X"),
                                                                 str(tmp_path / "o" / "gan" / "Y"))
    (tmp_path / "weights").mkdir()
    (tmp_path / "ae.pt").write_bytes(b"")
    cfg = load_config(None, {"benchmark": {"weights_dir": "weights"}, "encode": {"checkpoint": "ae.pt"}})
    assert (cfg.benchmark.weights_dir, cfg.encode.checkpoint) == (str(tmp_path / "weights"), str(tmp_path / "ae.pt"))
    cfg = load_config(None, {"benchmark": {"encode_run": "o/encode/typo"}})
    assert (cfg.benchmark.encode_run, cfg.benchmark.gan_run) == ("o/encode/typo", "")   # as typed, for the error


def test_a_home_folder_written_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    # found in session 75: a shell expands ~ only at the start of a word, so --data=~/xray reached genaug as
    # '~/xray' ("data folder not found" of a folder that is there), and --out=~/runs wrote into ./~/runs; a
    # profile's `data: ~/xray` too
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home" / "xray" / "train").mkdir(parents=True)
    profile = tmp_path / "mine.yaml"
    profile.write_text("data:\n  data: ~/xray\n  cache_dir: ~/cache\nrun:\n  out_root: ~/runs\n")
    for cfg in (load_config(None, {"data": {"data": "~/xray", "cache_dir": "~/cache"}, "run": {"out_root": "~/runs"}}),
                load_config(str(profile))):
        assert cfg.data.data == str(tmp_path / "home" / "xray")
        assert (cfg.data.cache_dir, cfg.run.out_root) == (str(tmp_path / "home" / "cache"), str(tmp_path / "home" / "runs"))
    cfg = load_config(None, {"benchmark": {"gan_run": "~/runs/gan/X", "encode_run": "~/runs/encode/Y"}})
    assert (cfg.benchmark.gan_run, cfg.benchmark.encode_run) == (str(tmp_path / "home" / "runs" / "gan" / "X"),
                                                                 str(tmp_path / "home" / "runs" / "encode" / "Y"))
    assert not (tmp_path / "~").exists()


def test_a_relative_data_path_is_saved_absolute_so_runs_match_from_any_directory(tmp_path, monkeypatch):
    """A GAN run made from the project root with --data ../shared/x, checked by a benchmark started
    in another directory as --data ../../work/shared/x, was refused as other data: the two spellings
    were compared as strings, or resolved against the wrong directory."""
    from genaug.config import data_differences, same_data_source
    data = tmp_path / "shared" / "xray"
    (data / "train").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project")
    made_here = load_config(None, {"data": {"data": "../shared/xray"}})
    assert made_here.data.data == str(data)
    monkeypatch.chdir(tmp_path / "elsewhere" / "deeper")
    given_there = load_config(None, {"data": {"data": "../../shared/xray"}})
    assert data_differences(made_here.to_dict(), given_there.to_dict()) == []
    assert data_differences(made_here.to_dict(), load_config(None, {"data": {"data": "demo"}}).to_dict()) == ["data"]
    # a missing path stays as typed, for the error to quote; demo and medmnist:NAME are names, not paths
    for spec in ("no/such/folder", "demo", "medmnist:pneumoniamnist"):
        assert load_config(None, {"data": {"data": spec}}).data.data == spec
    assert not same_data_source("demo", "medmnist:pneumoniamnist")
    # a run saved with a relative path before paths were stored absolute still resolves as before
    monkeypatch.chdir(tmp_path / "project")
    assert same_data_source("../shared/xray", str(data))


def test_a_resumed_runs_missing_data_says_how_to_give_it_back(tmp_path, monkeypatch):
    from genaug.config import check_resumed_data
    from genaug.errors import DataError
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    for spec in ("demo", "medmnist:pneumoniamnist", str(tmp_path / "here"), "here"):
        check_resumed_data(spec, "outputs/gan/r")          # nothing to say
    with pytest.raises(DataError, match=r"reads its data from /gone/xray, which is not there now: .*ln -s NEW_PATH "
                                        r"/gone/xray"):
        check_resumed_data("/gone/xray", "outputs/gan/r")
    # a run made before relative paths were saved absolute: read from where it was made
    with pytest.raises(DataError, match=r"reads its data from \.\./xray from the folder it was made in, which"):
        check_resumed_data("../xray", "outputs/gan/r")


def test_epochs_for_gives_named_models_theirs_the_latent_cnn_its_own_and_the_rest_epochs():
    from genaug.config import BenchmarkConfig
    b = BenchmarkConfig(epochs=6, latent_epochs=18, model_epochs=" resnet34=12, densenet121 = 9,")
    assert [b.epochs_for(m) for m in ("cnn", "resnet34", "densenet121")] == [6, 12, 9]
    assert b.epochs_for("cnn", latent=True) == 18 and BenchmarkConfig(epochs=6).epochs_for("cnn", latent=True) == 6


def test_train_fractions_are_each_taken_once():
    # '0.5,0.50' planned the 0.5 cell twice: genaug runs counted 2 cells where one had trained
    from genaug.config import parse_fractions
    assert parse_fractions("0.5,0.50, 1,0.1") == [0.5, 1.0, 0.1]


def test_a_wheel_built_and_installed_not_editable_finds_its_profiles(tmp_path):
    # `pip install .` (not -e) installed genaug without configs/, and then `--profile demo` was unknown
    root = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"   # a copy: building in the checkout would leave build/ and egg-info there
    for name in ("genaug", "cli", "configs"):
        shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    run = dict(capture_output=True, text=True, timeout=600)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "wheel"), str(src)], **run)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("genaug-*.whl"))
    profiles = {p.name for p in (root / "configs").glob("*.yaml")}
    assert {"demo.yaml", "cpu.yaml", "paper.yaml"} <= profiles
    assert {f"genaug_configs/{n}" for n in profiles} <= set(zipfile.ZipFile(wheel).namelist())
    # installed into a fresh environment (torch and the rest from this one) and run from an empty folder;
    # the environment lies in another project's git checkout, as a project's .venv does
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, **run)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "another project"], check=True, **run)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")], check=True, **run)
    py = tmp_path / "venv" / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], **run)
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp_path / "elsewhere").mkdir()
    r = subprocess.run([str(py), "-c", "import genaug.config as c; print(c.find_profile('demo')); "
                        "print(c.load_config('demo').data.data); import genaug.runs as r; print(r.git_commit())"],
                       cwd=tmp_path / "elsewhere", **run)
    assert r.returncode == 0, r.stderr[-2000:]
    found, data, commit = r.stdout.split()
    assert commit == "unknown"   # it had recorded that project's HEAD as genaug's commit
    assert found == str(tmp_path / "venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                        / "site-packages" / "genaug_configs" / "demo.yaml")
    assert data == "demo"


@pytest.mark.parametrize("name,gpus,told", [
    ("cudax", 2, "unknown device 'cudax'; use auto, cpu, cuda (or cuda:N, one GPU of several) or mps"),
    ("cuda:1", 0, "device 'cuda:1' requested but no CUDA GPU is visible; use --device cpu or auto"),
    ("cuda:1", 1, "device 'cuda:1' requested but 1 CUDA GPU is visible (cuda:0); give one of them, or cuda"),
    ("cuda:4", 4, "device 'cuda:4' requested but 4 CUDA GPUs are visible (cuda:0 to cuda:3); give one of them, or cuda"),
    ("cuda:3", 4, None), ("CUDA", 1, None), ("cpu", 0, None),
])
def test_a_device_is_refused_by_its_own_name_where_no_such_device_is_visible(monkeypatch, name, gpus, told):
    # found in session 68: 'cudax' and 'cuda:1' were told "device 'cuda' requested ...", and cuda:5 on a
    # one-GPU machine passed the check (no machine here has a GPU to see where it would then have failed)
    import torch
    from genaug.device import resolve_device
    from genaug.errors import ConfigError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)   # put back after
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    if told is None:
        assert resolve_device(name) == torch.device(name.lower())
        assert current == ([int(name.split(":")[1])] if ":" in name else [])
    else:
        with pytest.raises(ConfigError) as caught:
            resolve_device(name)
        assert str(caught.value) == told


@pytest.mark.parametrize("amx,avx512_bf16,has", [(True, False, True), (False, True, True), (False, False, False),
                                                 (None, None, False)])   # None: a torch without the check
def test_a_cpu_computes_bf16_in_hardware_with_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16, has):
    import torch
    from genaug.device import cpu_has_bf16

    for check, answer in (("_is_amx_tile_supported", amx), ("_is_avx512_bf16_supported", avx512_bf16)):
        if answer is None:
            monkeypatch.delattr(torch.cpu, check, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, check, lambda answer=answer: answer)
    assert cpu_has_bf16() is has


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="oneDNN's ISA cap is x86's")
@pytest.mark.parametrize("isa,told", [
    # measured in session 75 with oneDNN capped so (docs/PERFORMANCE.md (p))
    ("AVX2", "on an x86 CPU limited so a training step ran at 0.08-0.13x fp32's speed (docs/PERFORMANCE.md (p))"),
    # measured in session 77 on an Ice Lake Xeon, which has AVX-512 without bf16 (docs/PERFORMANCE.md (s))
    ("AVX512_CORE_VNNI", "on such an Intel Xeon (Ice Lake) a training step ran at 0.37-0.71x fp32's speed")])
def test_the_note_for_a_cpu_without_bf16_hardware_gives_the_slowdown_measured_for_its_kind(isa, told):
    # a new process, as oneDNN reads the cap once
    if isa == "AVX512_CORE_VNNI" and "avx512" not in open("/proc/cpuinfo").read():
        pytest.skip("this CPU has no AVX-512")
    r = subprocess.run([sys.executable, "-c", "from genaug.device import emulated_bf16_note; print(emulated_bf16_note())"],
                       env={**os.environ, "ONEDNN_MAX_CPU_ISA": isa}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert told in r.stdout and "--no-cpu-amp turns it off" in r.stdout


def test_two_runs_that_keep_the_same_classes_read_the_same_data():
    # data.classes (session 86): named in any order and case it keeps the same classes; a config saved before the
    # key existed kept every class
    from genaug.config import data_differences
    a = {"data": {"data": "x", "classes": "COVID,Normal"}}
    assert data_differences(a, {"data": {"data": "x", "classes": " normal, covid"}}) == []
    assert data_differences({"data": {"data": "x"}}, {"data": {"data": "x", "classes": ""}}) == []
    assert data_differences({"data": {"data": "x"}}, a) == ["classes"]


def test_classes_may_be_written_as_a_yaml_list(tmp_path):
    prof = tmp_path / "two.yaml"
    prof.write_text("data:\n  classes: [COVID, Normal]\n")
    assert load_config(str(prof)).data.classes == "COVID,Normal"
