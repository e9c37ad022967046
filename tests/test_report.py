import json

from genaug.report import results_document, run_commands


def _manifest(path, **fields):
    path.write_text(json.dumps({"command": "benchmark", **fields}))


def test_commands_include_resumes_run_as_shards_in_time_order(tmp_path):
    made = ["genaug", "benchmark", "--profile", "cpu"]
    extend = ["genaug", "benchmark", "--resume", "R", "--seeds", "3"]
    shard1 = ["genaug", "benchmark", "--resume", "R", "--shard", "1/2"]
    shard2 = ["genaug", "benchmark", "--resume", "R", "--shard", "2/2"]
    last = ["genaug", "benchmark", "--resume", "R"]
    base = {"argv": made, "resumed": ["2026-11-23T10:00:00"], "resume_argv": [extend]}
    # each shard's manifest is the main one as it was when the shard opened the run, plus its own resume
    _manifest(tmp_path / "manifest-shard1of2.json", argv=made, resumed=base["resumed"] + ["2026-11-23T11:00:00"],
              resume_argv=[extend, shard1])
    _manifest(tmp_path / "manifest-shard2of2.json", argv=made, resumed=base["resumed"] + ["2026-11-23T11:00:05"],
              resume_argv=[extend, shard2])
    main = {**base, "resumed": base["resumed"] + ["2026-11-23T12:00:00"], "resume_argv": [extend, last]}
    _manifest(tmp_path / "manifest.json", **main)
    assert run_commands(tmp_path, {"command": "benchmark", **main}) == [made, extend, shard1, shard2, last]
    (tmp_path / "report.md").write_text("# genaug benchmark: x\n")
    doc = results_document([tmp_path])
    assert doc.index("--shard 1/2") < doc.index("--shard 2/2") < doc.index("genaug benchmark --resume R\n")
