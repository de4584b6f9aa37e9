from pathlib import Path

import pytest

from qa.ingest.corpus import find_files
from qa.ingest.readers import UnreadableFile, decode, parse_sections, read_document

WIKI = """= Title =

Lead paragraph.

== History ==
Early days.

=== Treaty ===
Signed in 1965.

==Culture==
Music.
"""


def test_wiki_headings_become_section_paths():
    sections = parse_sections(WIKI)
    assert [s.path for s in sections] == ["", "History", "History > Treaty", "Culture"]
    assert [WIKI[s.start : s.end].strip() for s in sections] == ["Lead paragraph.", "Early days.", "Signed in 1965.", "Music."]


def test_markdown_headings_become_section_paths():
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### On Linux\n\nApt.\n\n## Use\n\nAsk.\n"
    assert [s.path for s in parse_sections(text)] == ["", "Install", "Install > On Linux", "Use"]


def test_level_one_heading_that_is_not_the_title_is_kept_in_the_path():
    text = "Intro.\n\n# Part A\n\nText A.\n\n## Sub\n\nMore.\n"
    assert [s.path for s in parse_sections(text)] == ["", "Part A", "Part A > Sub"]


def test_title_comes_from_first_heading_else_file_name(tmp_path: Path):
    (tmp_path / "a.md").write_text("# My Guide\n\nBody.\n", encoding="utf-8")
    (tmp_path / "notes_on-things.txt").write_text("Just text.\n", encoding="utf-8")
    titles = {d.path: d.title for d in (read_document(p, tmp_path) for p in find_files(tmp_path))}
    assert titles == {"a.md": "My Guide", "notes_on-things.txt": "notes on things"}


@pytest.mark.parametrize(
    "data, expected",
    [
        ("\ufeffHello BOM\r\n".encode("utf-8"), "Hello BOM\n"),
        ("Café crème à Noël, déjà vu.".encode("latin-1"), "Café crème à Noël, déjà vu."),
        ("“Quotes” – cp1252".encode("cp1252"), "“Quotes” – cp1252"),
        ("UTF-16 text with 한국어".encode("utf-16"), "UTF-16 text with 한국어"),
        ("日韓関係は複雑である。独島の問題。".encode("utf-8"), "日韓関係は複雑である。独島の問題。"),
        ("中文文本，这是一个测试。日本和韩国的关系。".encode("gbk"), "中文文本，这是一个测试。日本和韩国的关系。"),
    ],
)
def test_decode_keeps_every_character(data: bytes, expected: str):
    assert decode(data) == expected


def test_decode_rejects_binaries():
    with pytest.raises(UnreadableFile, match="binary"):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(UnreadableFile):
        decode(bytes(range(1, 32)) * 50)


def test_unreadable_and_empty_files_are_refused_with_the_reason(tmp_path: Path):
    (tmp_path / "good.txt").write_text("A real sentence.", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text(" \n\n  \n", encoding="utf-8")
    assert read_document(tmp_path / "good.txt", tmp_path).text == "A real sentence."
    for name, reason in (("binary.txt", "binary"), ("empty.md", "empty"), ("blank.txt", "empty")):
        with pytest.raises(UnreadableFile, match=reason):
            read_document(tmp_path / name, tmp_path)


def test_find_files_is_recursive_and_ignores_hidden_and_other_types(tmp_path: Path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("a.txt", "sub/b.md", "sub/deeper/c.TXT", ".hidden/d.txt", "e.doc", "sub/f.py", "g.html", "h.pdf"):
        (tmp_path / rel).write_text("x", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in find_files(tmp_path)] == [
        "a.txt", "g.html", "h.pdf", "sub/b.md", "sub/deeper/c.TXT"
    ]


def test_document_ids_are_stable_and_text_is_normalised(tmp_path: Path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfLine one.\r\nLine two.\r\n")
    first, second = read_document(path, tmp_path), read_document(path, tmp_path)
    assert first == second
    assert first.text == "Line one.\nLine two.\n"
    assert "\ufeff" not in first.text and "\r" not in first.text


@pytest.mark.parametrize(
    "name, stored",
    [("../../x.txt", "x.txt"), ("..\\..\\x.txt", "x.txt"), ("/etc/cron.d/job.md", "job.md"), (".bashrc.txt", "bashrc.txt")],
)
def test_added_files_land_inside_the_corpus_under_safe_names(tmp_path: Path, name: str, stored: str):
    from qa.ingest.corpus import add_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    source = tmp_path / "upload.bin"
    source.write_text("Some text.", encoding="utf-8")
    saved = add_file(corpus, name, source)
    assert saved == corpus / stored and saved.read_text(encoding="utf-8") == "Some text."
    assert [p.name for p in corpus.iterdir()] == [stored]


def test_added_files_never_overwrite_and_bad_ones_leave_nothing(tmp_path: Path):
    from qa.ingest.corpus import add_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Original.", encoding="utf-8")
    source = tmp_path / "u"
    source.write_text("Different.", encoding="utf-8")
    assert add_file(corpus, "a.txt", source).name == "a-1.txt"
    assert (corpus / "a.txt").read_text(encoding="utf-8") == "Original."
    source.write_bytes(b"\x00\x01" * 50)
    with pytest.raises(UnreadableFile):
        add_file(corpus, "b.txt", source)
    with pytest.raises(UnreadableFile, match="only .txt"):
        add_file(corpus, "../../etc/passwd", source)
    assert sorted(p.name for p in corpus.iterdir()) == ["a-1.txt", "a.txt"]


def test_removed_paths_are_left_out_until_the_file_is_added_again(tmp_path: Path):
    from qa.ingest.corpus import add_file, set_ignored

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\nAlpha text.\n")
    (corpus / "b.md").write_text("# B\n\nBeta text.\n")
    set_ignored(corpus, "a.md", True)
    assert [p.name for p in find_files(corpus)] == ["b.md"] and (corpus / ".qaignore").is_file()
    upload = tmp_path / "a.md"
    upload.write_text("# A\n\nAlpha text.\n")
    add_file(corpus, "a.md", upload)
    assert [p.name for p in find_files(corpus)] == ["a.md", "b.md"]


def test_a_folder_tree_deeper_than_path_max_is_skipped_by_name(tmp_path: Path, caplog):
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.md").write_text("# OK\n\nReadable.\n")
    fd = os.open(corpus, os.O_RDONLY)
    for _ in range(25):  # 25 × 200 characters: past PATH_MAX (4096), made relative to open folders
        os.mkdir("d" * 200, dir_fd=fd)
        inner = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    deep = os.open("deep.md", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
    os.write(deep, b"# Deep\n\nUnreachable by path.\n")
    os.close(deep)
    os.close(fd)
    with caplog.at_level("WARNING"):
        assert [p.name for p in find_files(corpus)] == ["ok.md"]
    assert "skipping" in caplog.text and "File name too long" in caplog.text


def test_a_folder_that_cannot_be_read_is_skipped_by_name(tmp_path: Path, caplog, monkeypatch):
    import os

    corpus = tmp_path / "corpus"
    (corpus / "private").mkdir(parents=True)
    (corpus / "private" / "hidden.md").write_text("# Hidden\n\nSecret.\n")
    (corpus / "ok.md").write_text("# OK\n\nReadable.\n")
    real_scandir = os.scandir

    def scandir(path):  # root reads every folder, so the refusal is injected
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level("WARNING"):
        assert [p.name for p in find_files(corpus)] == ["ok.md"]
    assert f"skipping folder {corpus / 'private'}: Permission denied" in caplog.text
