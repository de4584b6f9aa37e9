"""One file never stops a build: malformed, encrypted and oversized files of every shape are
skipped (or cut) with a message naming them, and the rest of the corpus is indexed."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_formats import MARKDOWN

from qa.config import Settings
from qa.index.build import build_index
from qa.ingest.readers import UnreadableFile, read_document


def pdf_bytes(text: str, encryption: str | None = None, user_password: str = "") -> bytes:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 10, text)
    if encryption:
        pdf.set_encryption(owner_password="owner", user_password=user_password,
                           encryption_method=getattr(EncryptionMethod, encryption))
    return bytes(pdf.output())


def mutants(data: bytes, count: int, seed: int = 7):
    """Copies of `data` with a few random bytes overwritten, a slice dropped or repeated, or cut short."""
    rng = random.Random(seed)
    for n in range(count):
        b = bytearray(data)
        kind = n % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1:
            a = rng.randrange(len(b))
            del b[a : a + rng.randint(1, 64)]
        elif kind == 2:
            a = rng.randrange(len(b))
            b[a:a] = b[a : a + rng.randint(1, 200)] * rng.randint(1, 5)
        else:
            b = b[: rng.randrange(len(b))]
        yield bytes(b)


@pytest.mark.parametrize("encryption", ["AES_128", "AES_256", "RC4"])
def test_a_pdf_encrypted_without_a_user_password_is_read(tmp_path: Path, encryption: str):
    (tmp_path / "locked.pdf").write_bytes(pdf_bytes("The vault code is 4711.", encryption))
    assert "4711" in read_document(tmp_path / "locked.pdf", tmp_path).text


def test_a_password_protected_pdf_is_skipped_with_a_reason(tmp_path: Path):
    (tmp_path / "secret.pdf").write_bytes(pdf_bytes("The vault code is 4711.", "AES_256", user_password="pw"))
    with pytest.raises(UnreadableFile, match="password"):
        read_document(tmp_path / "secret.pdf", tmp_path)


def test_fuzzed_pdfs_are_read_or_refused_never_an_exception(tmp_path: Path):
    plain = pdf_bytes("Ferries link Busan and Fukuoka. " * 20)
    aes = pdf_bytes("The vault code is 4711. " * 20, "AES_128")
    outcomes = {"read": 0, "refused": 0}
    for n, data in enumerate([*mutants(plain, 300), *mutants(aes, 100, seed=8)]):
        path = tmp_path / f"m{n}.pdf"
        path.write_bytes(data)
        try:
            read_document(path, tmp_path)
            outcomes["read"] += 1
        except UnreadableFile:
            outcomes["refused"] += 1
    assert outcomes["read"] > 0 and outcomes["refused"] > 0  # the fuzzing reached both outcomes


def test_a_build_skips_every_bad_pdf_and_indexes_the_rest(settings: Settings, fake_embedder, caplog):
    (settings.corpus_dir / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    (settings.corpus_dir / "secret.pdf").write_bytes(pdf_bytes("x", "AES_256", user_password="pw"))
    for n, data in enumerate(mutants(pdf_bytes("Ferries link Busan and Fukuoka."), 40)):
        (settings.corpus_dir / f"fuzz{n}.pdf").write_bytes(data)
    with caplog.at_level("WARNING"):
        summary = build_index(settings, fake_embedder, progress=False)
    assert "notes.md" not in summary.skipped and "secret.pdf" in summary.skipped
    assert "secret.pdf: " in caplog.text or "secret.pdf" in caplog.text


BUILD_AND_MEASURE = """
import json, sys
sys.path[:0] = [sys.argv[2]]
from pathlib import Path
from conftest import FakeEmbedder
from qa.index.build import build_index
from qa.config import Settings
from qa.evaluation.evaluate import peak_rss_mb
work = Path(sys.argv[1])
summary = build_index(Settings(corpus_dir=work / "corpus", index_dir=work / "index"), FakeEmbedder(), progress=False)
print(json.dumps({"documents": summary.documents, "chunks": summary.chunks, "skipped": summary.skipped,
                  "peak_mb": peak_rss_mb()}))
"""


@pytest.mark.slow  # ~20 s: two files of ~19 MB (no model is loaded)
def test_huge_files_of_any_shape_are_indexed_in_bounded_memory(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "list.md").write_text("- a\n" * 4_900_000, encoding="utf-8")  # 4.9M list lines, 19.6 MB
    (corpus / "line.txt").write_text("word " * 3_000_000, encoding="utf-8")  # one 15 MB line
    (corpus / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", BUILD_AND_MEASURE, str(tmp_path), str(ROOT / "tests")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["documents"] == 3 and not result["skipped"]
    assert result["peak_mb"] < 600, result  # ~180 MB here; the text alone is 35 MB
    assert "list.md: only its first 100000 sentences are indexed" in run.stderr


def test_a_huge_heading_like_line_is_text_not_a_title(tmp_path: Path):
    (tmp_path / "one.md").write_text("# " + "word " * 1000, encoding="utf-8")
    from conftest import count_words

    from qa.ingest.chunking import split_document

    doc = read_document(tmp_path / "one.md", tmp_path)
    assert split_document(doc, count_words, 160, 40).chunks


def test_the_unit_cap_keeps_the_start_of_a_file(tmp_path: Path):
    from conftest import count_words

    from qa.ingest.chunking import split_document

    (tmp_path / "many.md").write_text("# Many\n\n## Part\n\n" + "".join(f"- item {n}\n" for n in range(50)),
                                      encoding="utf-8")
    doc = read_document(tmp_path / "many.md", tmp_path)
    full, cut = (split_document(doc, count_words, 20, 5, limit) for limit in (None, 10))
    assert not full.cut and len(full.units) == 50
    assert cut.cut and len(cut.units) == 10 and cut.units == full.units[:10]
    assert cut.chunks[-1].end == full.units[9][1] and "item 9" in cut.chunks[-1].text


def test_a_utf16_file_cut_mid_character_is_refused_with_a_reason(tmp_path: Path):
    (tmp_path / "odd.txt").write_bytes("\ufeffhello".encode("utf-16-le")[:-1])
    with pytest.raises(UnreadableFile, match="could not be read"):
        read_document(tmp_path / "odd.txt", tmp_path)


def test_long_upload_names_keep_their_type(tmp_path: Path):
    from qa.ingest.corpus import add_file, safe_file_name

    source = tmp_path / "src.md"
    source.write_text("# Notes\n\nThe ferry leaves at nine.\n", encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("n" * 150 + ".md", "한국어" * 60 + ".md"):
        saved = add_file(corpus, name, source)
        assert saved.suffix == ".md" and saved.name == safe_file_name(name) and len(saved.name) <= 80
    assert not list(corpus.glob(".*"))  # nothing staged is left behind
