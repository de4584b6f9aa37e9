"""End-to-end: the real `qa` command, the real embedding model, a real FAISS index."""

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import QA, qa


@pytest.fixture(scope="module")
def workdir(seed_workdir: Path) -> Path:
    return seed_workdir


@pytest.mark.slow  # loads the real models
def test_search_json_is_one_object_with_the_liancourt_passage_first(workdir: Path):
    result = qa("search", "What are the Liancourt Rocks called in Korean?", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert out["query"] == "What are the Liancourt Rocks called in Korean?"
    first = out["passages"][0]
    assert {"chunk_id", "doc_id", "section", "start", "end", "text", "score"} <= set(first)
    assert first["section"] == "Disputes > Liancourt Rocks" and "Dokdo" in first["text"]
    source = (workdir / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    for p in out["passages"]:
        assert source[p["start"] : p["end"]] == p["text"]


@pytest.mark.slow  # loads the real models
def test_search_prints_ranked_passages_with_section_and_offsets(workdir: Path):
    result = qa("search", "When was the treaty normalising relations signed?", "-k", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[1] Japan–South Korea relations") and "[2] " in result.stdout
    assert "(chars " in result.stdout and "[3] " not in result.stdout


@pytest.mark.slow  # loads the real models
def test_if_stale_skips_a_fresh_index(workdir: Path):
    result = qa("index", "--if-stale", cwd=workdir)
    assert result.returncode == 0 and "up to date" in result.stderr


@pytest.mark.slow  # loads the real models
def test_flags_and_environment_choose_the_folders(workdir: Path, tmp_path: Path):
    missing = qa("search", "Dokdo", "--index", str(tmp_path / "nowhere"), cwd=workdir)
    assert missing.returncode == 1 and "no index in" in missing.stderr and "qa index" in missing.stderr
    env_run = subprocess.run(
        [*QA, "search", "Dokdo", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "QA_CORPUS_DIR": str(workdir / "corpus"), "QA_INDEX_DIR": str(workdir / "index")},
    )
    assert env_run.returncode == 0, env_run.stderr
    assert json.loads(env_run.stdout)["passages"]


@pytest.mark.parametrize(
    "question, message",
    [("", "empty"), ("   ", "empty"), ("x" * 100_000, "too long"), ("Dokdo \udcff?", "not valid text")],  # \xff on a terminal
)
@pytest.mark.slow  # loads the real models
def test_bad_questions_exit_1_with_a_message_and_no_traceback(workdir: Path, question: str, message: str):
    result = qa("search", question, cwd=workdir)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.slow  # loads the real models
def test_editing_the_corpus_makes_search_warn_that_the_index_is_out_of_date(workdir: Path, tmp_path: Path):
    work = tmp_path / "w"
    shutil.copytree(workdir, work)
    with (work / "corpus" / "japan_south_korea_relations.txt").open("a", encoding="utf-8") as f:
        f.write("\nA new paragraph.\n")
    result = qa("search", "Dokdo", cwd=work)
    assert result.returncode == 0 and "Liancourt" in result.stdout  # the index as built still answers
    assert "the corpus folder changed since the index was built (1 changed" in result.stderr
    assert "run `qa index` to include the changes" in result.stderr
    model = qa("search", "Dokdo", cwd=work, env={"QA_CHUNK_TOKENS": "99"})  # built for other settings: refused
    assert model.returncode == 1 and "index is stale: run `qa index` (built with other chunking" in model.stderr
    (work / "corpus" / "extra.md").write_text("# Extra\n\nA second document about ferries.\n", encoding="utf-8")
    rebuilt = qa("index", "--if-stale", cwd=work)
    assert rebuilt.returncode == 0 and rebuilt.stdout.startswith("indexed 2 documents")
    assert rebuilt.stdout.splitlines()[1] == "1 new, 1 changed, 0 removed, 0 unchanged"
    (work / "corpus" / "extra.md").write_text("# Extra\n\nNow about trains.\n", encoding="utf-8")
    again = qa("index", cwd=work)
    assert again.stdout.splitlines()[1] == "0 new, 1 changed, 0 removed, 1 unchanged"
    assert qa("search", "Dokdo", cwd=work).returncode == 0


def test_an_empty_corpus_folder_is_explained(tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    result = qa("index", cwd=tmp_path)
    assert result.returncode == 1 and "no documents in" in result.stderr and "Traceback" not in result.stderr


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path):
    command = " ".join(shlex.quote(part) for part in QA) + " models list | head -c 10"
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr and len(result.stdout) == 10


@pytest.mark.slow  # the real models
def test_the_readme_commands_run_as_written(seed_workdir: Path, tmp_path: Path):
    """Every `qa` line of README.md's shell blocks, except the one that starts a server, runs
    and succeeds in a copy of the seed folder (with the questions file beside it)."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for block in re.findall(r"```sh\n(.*?)```", readme, re.S)
             for line in block.splitlines()]
    commands = [line for line in lines if line.startswith(".venv/bin/qa ") and " serve" not in line]
    assert len(commands) >= 4, commands
    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work, ignore=shutil.ignore_patterns("app-*.log"))
    (work / "eval").mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl", work / "eval")
    for command in commands:
        args = [a.replace("/tmp/", f"{tmp_path}/") for a in shlex.split(command)[1:]]
        result = qa(*args, cwd=work)
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert result.stdout.strip(), command


@pytest.mark.slow  # loads the real models
def test_a_documents_terminal_escapes_are_shown_not_acted_on(tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    hostile = ("Busan\x1b]0;title\x07 Harbour\n\nThe harbour of Busan\x1b]0;pwned\x07 opened to trade in 1876.\x1b[2J\x1b[31m "
               "It is the largest port of South Korea.\x9b0m\n\n" + "Ferries leave the harbour for Fukuoka every day. " * 30)
    (tmp_path / "corpus" / "busan.txt").write_text(hostile, encoding="utf-8")
    assert qa("index", cwd=tmp_path).returncode == 0
    for command in (("search", "When did the harbour of Busan open to trade?"),
                    ("ask", "When did the harbour of Busan open to trade?"),
                    ("ask", "When did the harbour of Busan open to trade?", "--json")):
        result = qa(*command, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert not any(c in result.stdout + result.stderr for c in "\x1b\x07\x9b"), command
        assert "1876" in result.stdout and ("\\x1b" in result.stdout or "\\u001b" in result.stdout), command
