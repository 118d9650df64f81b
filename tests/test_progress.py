"""What a person watches: a bar on a terminal, a line every few seconds anywhere else."""

from conftest import tiny_run_argv

import rnnlab.train.reporting as reporting
from rnnlab.cli import main


def test_without_a_terminal_progress_is_plain_lines_every_few_seconds(
    tmp_path, corpus_file, capsys, monkeypatch
):
    # pytest's captured stderr is no terminal, as under CI, nohup or a pipe.
    assert main(tiny_run_argv(corpus_file, tmp_path / "a", quiet=False, max_steps=12)) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err  # no tqdm redraws
    assert not [line for line in err.splitlines() if line.startswith("step") and "tokens/s" in line]
    monkeypatch.setattr(reporting, "PROGRESS_EVERY", 0.0)  # a line at every step
    assert main(tiny_run_argv(corpus_file, tmp_path / "b", quiet=False, max_steps=12)) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "tokens/s" in line]
    assert [line.split()[1] for line in lines] == [f"{k}/12" for k in range(1, 13)]
