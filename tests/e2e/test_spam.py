"""The text use case, examples/text/models/spam: whole SpamAssassin e-mails (headers and body, as the data
set stores them) posted as they are, answered "spam"/"ham" with P(spam), equal to the same steps in Python
(sentencepiece + torch on the committed files) on the held-out groups easy-ham-2 and spam-2; and the label
backend on its own."""
import json
import time

import pytest

from conftest import EXAMPLES, Server, write_model

TEXT = EXAMPLES.parent / "text"
DATA = TEXT / ".data" / "package" / "data"


def held_out():
    if not DATA.exists():
        pytest.fail("the spam e-mails are missing: examples/text/fetch_data.sh (scripts/install-deps.sh runs it)")
    out = []
    for group in ("easy-ham-2", "spam-2"):
        for f in sorted((DATA / group).glob("*.json")):
            out.append((json.loads(f.read_text())["text"], group.startswith("spam")))
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    link = tmp_path_factory.mktemp("text") / "models"
    link.symlink_to(TEXT / "models")
    s = Server(link)
    yield s
    s.stop()


def oracle(texts):
    """The pipeline's steps in Python: sentencepiece ids, first 1024, padded with 0; the TorchScript file."""
    import sentencepiece
    import torch
    sp = sentencepiece.SentencePieceProcessor(model_file=str(TEXT / "models" / "spam_tokenizer" / "1" / "tokenizer.model"))
    model = torch.jit.load(str(TEXT / "models" / "spam_classifier" / "1" / "model.pt"))
    rows = [sp.encode(t)[:1024] for t in texts]
    ids = torch.tensor([r + [0] * (1024 - len(r)) for r in rows], dtype=torch.int64)
    with torch.no_grad():
        return model(ids).squeeze(1).tolist()


@pytest.mark.torch
@pytest.mark.sentencepiece
def test_held_out_emails_equal_python_and_the_reported_accuracy(server):
    emails = held_out()
    texts = [t for t, _ in emails]
    want = oracle(texts)
    labels, scores = [], []
    for i in range(0, len(texts), 50):  # multipart: one e-mail per part, a batch (max_batch_size 64)
        parts = [("text", (f"{j}.eml", texts[j].encode(), "text/plain")) for j in range(i, min(i + 50, len(texts)))]
        r = server.post("/v2/models/spam/infer", files=parts)
        assert r.status_code == 200, r.text[:300]
        out = {o["name"]: o for o in r.json()["outputs"]}
        labels += out["label"]["data"]
        scores += out["score"]["data"]
    assert len(labels) == len(texts)
    for got, w in zip(scores, want):
        assert abs(got - w) < 1e-5
    assert labels == ["spam" if w >= 0.5 else "ham" for w in want]
    accuracy = sum((lab == "spam") == is_spam for lab, (_, is_spam) in zip(labels, emails)) / len(emails)
    reported = json.loads((TEXT / "spam_accuracy.json").read_text())
    assert abs(accuracy - reported["held_out_accuracy"]) < 1e-3 and reported["held_out_emails"] == len(emails)


@pytest.mark.torch
@pytest.mark.sentencepiece
def test_one_email_posted_as_it_is(server):
    text, _ = held_out()[-1]
    r = server.post("/v2/models/spam/infer", data=text.encode(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["label"]["datatype"] == "BYTES" and out["score"]["datatype"] == "FP32"
    assert out["label"]["data"] == ["spam" if oracle([text])[0] >= 0.5 else "ham"]


def test_the_label_backend(tmp_path, start_server):
    repo = tmp_path / "models"
    labels = {"labels.txt": b"cat\ndog\nbird\n"}
    write_model(repo, "three", "backend: label\nmax_batch_size: 8\ninputs:\n  - {name: p, datatype: FP32, shape: [3]}\n"
                "outputs:\n  - {name: label, datatype: BYTES, shape: [1]}\n  - {name: score, datatype: FP32, shape: [1]}\n",
                files=labels)
    write_model(repo, "binary", "backend: label\nmax_batch_size: 8\ninputs:\n  - {name: p, datatype: FP32, shape: [1]}\n"
                "outputs:\n  - {name: label, datatype: BYTES, shape: [1]}\nparameters: {threshold: \"0.8\", labels: yn.txt}\n",
                files={"yn.txt": b"no\r\nyes\r\n"})
    write_model(repo, "wrong_count", "backend: label\nmax_batch_size: 8\ninputs:\n  - {name: p, datatype: FP32, shape: [2]}\n"
                "outputs:\n  - {name: label, datatype: BYTES, shape: [1]}\n", files=labels)
    s = start_server(repo, wait_ready=False)
    for _ in range(100):
        if s.get("/v2/models/binary/ready").status_code == 200 and s.get("/v2/models/three/ready").status_code == 200:
            break
        time.sleep(0.1)
    r = s.infer("three", [{"name": "p", "datatype": "FP32", "shape": [3, 3],
                           "data": [0.1, 0.7, 0.2, 0.5, 0.2, 0.3, 0.3, 0.3, 0.4]}]).json()
    out = {o["name"]: o["data"] for o in r["outputs"]}
    assert out["label"] == ["dog", "cat", "bird"]
    assert [round(v, 6) for v in out["score"]] == [0.7, 0.5, 0.4]
    r = s.infer("binary", [{"name": "p", "datatype": "FP32", "shape": [3, 1], "data": [0.79, 0.8, 0.95]}]).json()
    assert r["outputs"][0]["data"] == ["no", "yes", "yes"]
    index = {m["name"]: m for m in s.post("/v2/repository/index").json()}
    assert index["wrong_count"]["state"] == "UNAVAILABLE"
    assert "labels.txt: 3 labels for 2 classes" in index["wrong_count"]["reason"]
