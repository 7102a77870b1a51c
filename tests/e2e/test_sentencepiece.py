"""The sentencepiece backend: text in, token ids out, equal to Python sentencepiece (Debian's
python3-sentencepiece) on the same tokenizer, with padding, truncation, <s>/</s>, lengths and the attention
mask; loaded next to LibTorch (the TorchScript backend) in one server, which a plain dlopen of Debian's
libsentencepiece (its own protobuf) would crash."""
import pathlib
import shutil
import time

import pytest

from conftest import EXAMPLES, Server, error_of, write_model

sentencepiece = pytest.importorskip("sentencepiece", reason="python3-sentencepiece (scripts/install-deps.sh)")
pytestmark = [pytest.mark.sentencepiece, pytest.mark.torch]

ROOT = pathlib.Path(__file__).resolve().parents[2]

TEXTS = [
    "Hello world.",
    "Crème brûlée, façade, naïve — déjà vu!",
    "東京は日本の首都です。北京欢迎你",
    "emoji: 🙂🚀 and a family 👨‍👩‍👧",
    "tabs\tand\nnewlines\r\n  double  spaces",
    "",
    "Subject: WIN MONEY NOW!!!\n\nClick http://example.com/?a=1&b=2 to claim $1,000,000.",
    "a very long text " * 400,
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A sentencepiece model trained here on the README (and the texts' scripts), with <pad> = 0."""
    d = tmp_path_factory.mktemp("spm")
    corpus = d / "corpus.txt"
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    corpus.write_text("\n".join(lines + TEXTS[:5] * 5) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(d / "spm"), vocab_size=600, character_coverage=1.0,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, minloglevel=2)
    return d / "spm.model"


def tokenizer_config(ids_shape, extra=None, mbs=8, **params):
    outputs = [f"  - {{name: ids, datatype: INT64, shape: {ids_shape}}}"]
    if extra:
        outputs.append(f"  - {{name: {extra[0]}, datatype: INT64, shape: {extra[1]}}}")
    p = "{" + ", ".join(f'{k}: "{v}"' for k, v in params.items()) + "}"
    return (f"backend: sentencepiece\nmax_batch_size: {mbs}\ninputs:\n  - {{name: text, datatype: BYTES, shape: [1]}}\n"
            f"outputs:\n" + "\n".join(outputs) + f"\nparameters: {p}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory, tokenizer):
    repo = tmp_path_factory.mktemp("sp") / "models"
    configs = {
        "tok": tokenizer_config("[-1]", ("lengths", "[1]")),
        "tok16": tokenizer_config("[16]", ("mask", "[16]"), add_bos="true", add_eos="true"),
        "tok16_left": tokenizer_config("[16]", truncation="left", add_eos="true"),
        "tok_one": tokenizer_config("[-1]", mbs=0, pad_id="5"),
    }
    for name, config in configs.items():
        write_model(repo, name, config, files={"1/tokenizer.model": tokenizer.read_bytes()})
    shutil.copytree(EXAMPLES / "mlp", repo / "mlp")  # LibTorch in the same process
    s = Server(repo)
    yield s
    s.stop()


def infer_texts(server, model, texts, batched=True):
    shape = [len(texts), 1] if batched else [1]
    r = server.infer(model, [{"name": "text", "datatype": "BYTES", "shape": shape, "data": texts}])
    assert r.status_code == 200, r.text
    return {o["name"]: o for o in r.json()["outputs"]}


def rows(out):
    width = out["shape"][-1]
    return [out["data"][i:i + width] for i in range(0, len(out["data"]), width)]


def test_ids_equal_python_sentencepiece(server, tokenizer):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    want = [sp.encode(t) for t in TEXTS]
    out = infer_texts(server, "tok", TEXTS)
    longest = max(len(w) for w in want)
    assert out["ids"]["shape"] == [len(TEXTS), longest]
    assert out["lengths"]["data"] == [len(w) for w in want]
    for got, w in zip(rows(out["ids"]), want):
        assert got == w + [0] * (longest - len(w))  # padded with the model's <pad>
    # One text at a time: the same ids, padded to its own length.
    for t, w in zip(TEXTS, want):
        assert infer_texts(server, "tok", [t])["ids"]["data"] == (w if w else [0])  # "": one <pad>


def test_fixed_length_with_bos_eos_mask_and_truncation(server, tokenizer):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    out = infer_texts(server, "tok16", TEXTS)
    assert out["ids"]["shape"] == [len(TEXTS), 16] and out["mask"]["shape"] == [len(TEXTS), 16]
    for t, ids, mask in zip(TEXTS, rows(out["ids"]), rows(out["mask"])):
        body = sp.encode(t)[:14]  # room for <s> and </s>
        want = [sp.bos_id()] + body + [sp.eos_id()]
        assert ids == want + [0] * (16 - len(want))
        assert mask == [1] * len(want) + [0] * (16 - len(want))
    left = infer_texts(server, "tok16_left", TEXTS)
    for t, ids in zip(TEXTS, rows(left["ids"])):
        body = sp.encode(t)
        body = body[-15:] if len(body) > 15 else body
        want = body + [sp.eos_id()]
        assert ids == want + [0] * (16 - len(want))


def test_unbatched_model_and_pad_id(server, tokenizer):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer))
    out = infer_texts(server, "tok_one", ["Crème brûlée"], batched=False)
    assert out["ids"]["data"] == sp.encode("Crème brûlée")
    assert infer_texts(server, "tok_one", [""], batched=False)["ids"]["data"] == [5]  # width 1: padding


def long_texts():
    """Texts far longer than the ids kept, where a prefix is enough: prose, and the cases around a cut."""
    prose = "\n".join(line for line in (ROOT / "README.md").read_text().splitlines() if line.strip())
    return [
        prose,
        prose[:3000],
        "東京は日本の首都です。" * 300,  # no space to cut at
        "x" * 5000 + " then words " * 50,  # one word longer than any prefix
        "two  spaces\ttabs\nnewlines\u00a0nbsp\u3000ideographic \u0301combining é " * 120,
        "🙂 👨‍👩‍👧 🚀 " * 400,
        "word " * 2000 + "   ",
        " leading and trailing spaces " * 150 + "  ",
    ]


def test_truncated_ids_of_long_texts_equal_the_whole_texts_first_ids(tmp_path, tokenizer):
    """Right truncation stops encoding at a prefix of a long text when the tokenizer's pieces never span
    a space (the default); ids must equal Python's encode(whole text)[:L]. A tokenizer trained with
    split_by_whitespace=false (pieces across words) is encoded whole, with the same result."""
    texts = long_texts()
    across = tmp_path / "across"
    sentencepiece.SentencePieceTrainer.train(
        input=str(tokenizer.parent / "corpus.txt"), model_prefix=str(across), vocab_size=600,
        character_coverage=1.0, split_by_whitespace=False, pad_id=0, unk_id=1, bos_id=2, eos_id=3, minloglevel=2)
    across_model = across.with_suffix(".model")
    sp_across = sentencepiece.SentencePieceProcessor(model_file=str(across_model))
    assert any("\u2581" in p[1:] for p in (sp_across.id_to_piece(i) for i in range(sp_across.get_piece_size())))
    repo = tmp_path / "models"
    models = {}
    for name, model in (("words", tokenizer), ("across", across_model)):
        for length in (16, 64, 300):
            models[f"{name}{length}"] = (model, length)
            write_model(repo, f"{name}{length}", tokenizer_config(f"[{length}]", add_bos="true"),
                        files={"1/tokenizer.model": model.read_bytes()})
    s = Server(repo)
    try:
        for name, (model, length) in models.items():
            sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
            out = infer_texts(s, name, texts)
            for i, (t, ids) in enumerate(zip(texts, rows(out["ids"]))):
                want = [sp.bos_id()] + sp.encode(t)[:length - 1]
                assert ids == want + [0] * (length - len(want)), (name, i)
    finally:
        s.stop()


def test_torch_and_sentencepiece_serve_side_by_side(server):
    r = server.infer("mlp", [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": list(range(16))}])
    assert r.status_code == 200
    assert server.get("/v2/health/ready").status_code == 200


def test_bad_configurations_fail_the_load_with_a_reason(tmp_path, tokenizer):
    repo = tmp_path / "models"
    model = {"1/tokenizer.model": tokenizer.read_bytes()}
    cases = {
        "two_inputs": ("backend: sentencepiece\nmax_batch_size: 4\ninputs:\n  - {name: a, datatype: BYTES, shape: [1]}\n"
                       "  - {name: b, datatype: BYTES, shape: [1]}\noutputs:\n  - {name: ids, datatype: INT64, shape: [-1]}\n",
                       "takes one BYTES input"),
        "float_ids": (tokenizer_config("[-1]").replace("datatype: INT64", "datatype: FP32"), "expected INT64 or INT32"),
        "bad_param": (tokenizer_config("[-1]", colour="red"), "parameters.colour: unknown parameter"),
        "bad_pad": (tokenizer_config("[-1]", pad_id="100000"), "parameters.pad_id: the tokenizer has 600 ids"),
        "no_room": (tokenizer_config("[2]", add_bos="true", add_eos="true"), "leave no room"),
        "bad_extra": (tokenizer_config("[8]", ("mask", "[9]")), "expected shape [1] (lengths) or [8]"),
    }
    for name, (config, _) in cases.items():
        write_model(repo, name, config, files=model)
    write_model(repo, "not_a_model", tokenizer_config("[-1]"), files={"1/tokenizer.model": b"not a sentencepiece model"})
    s = Server(repo, wait_ready=False)
    try:
        index = {}
        for _ in range(100):
            index = {m["name"]: m for m in s.post("/v2/repository/index").json()}
            if all(m["state"] != "LOADING" for m in index.values()) and len(index) == len(cases) + 1:
                break
            time.sleep(0.1)
        for name, (_, why) in cases.items():
            assert index[name]["state"] == "UNAVAILABLE" and why in index[name]["reason"], (name, index[name])
        assert "tokenizer.model: not a sentencepiece model" in index["not_a_model"]["reason"]
        assert str(tmp_path) not in index["not_a_model"]["reason"]
        r = s.infer("two_inputs", [])
        assert r.status_code == 503
        error_of(r)
    finally:
        s.stop()
