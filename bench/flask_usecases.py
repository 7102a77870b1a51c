"""The gunicorn + Flask contender of bench/usecases.sh: the spam and fashion examples as a Python user would
serve them today, the same steps on the same committed files, at the same paths and with the same raw-body
requests as berth (the e-mail as text/plain, the image file as image/png), answering the same v2 JSON:

  /v2/models/spam/infer     sentencepiece (first 1,024 ids, padded with 0) -> TorchScript -> label, score
  /v2/models/fashion/infer  PIL decode (gray, 28 x 28, / 255) -> TorchScript -> label, score, probs

Run with Debian's interpreter:  /usr/bin/python3 -m gunicorn -w 2 --pythonpath bench flask_usecases:app
(torch.set_num_threads(1) in each worker: one core each, as berth runs its models).
"""
import io
import json
import pathlib

import numpy as np
import sentencepiece
import torch
from flask import Flask, Response, request
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = ROOT / "examples" / "text" / "models"
VISION = ROOT / "examples" / "vision" / "models"

torch.set_num_threads(1)
SP = sentencepiece.SentencePieceProcessor(model_file=str(TEXT / "spam_tokenizer" / "1" / "tokenizer.model"))
SPAM = torch.jit.load(str(TEXT / "spam_classifier" / "1" / "model.pt"))
CNN = torch.jit.load(str(VISION / "fashion_cnn" / "1" / "model.pt"))
LABELS = (VISION / "fashion" / "labels.txt").read_text().splitlines()

app = Flask(__name__)


def answer(model, outputs):
    return Response(json.dumps({"model_name": model, "model_version": "1", "outputs": outputs}),
                    mimetype="application/json")


@app.get("/v2/health/ready")
def ready():
    return Response(status=200)


@app.post("/v2/models/spam/infer")
def spam():
    ids = SP.encode(request.get_data().decode("utf-8", "replace"))[:1024]
    x = torch.tensor([ids + [0] * (1024 - len(ids))], dtype=torch.int64)
    with torch.no_grad():
        score = float(SPAM(x)[0, 0])
    return answer("spam", [{"name": "label", "datatype": "BYTES", "shape": [1, 1],
                            "data": ["spam" if score >= 0.5 else "ham"]},
                           {"name": "score", "datatype": "FP32", "shape": [1, 1], "data": [score]}])


@app.post("/v2/models/fashion/infer")
def fashion():
    image = Image.open(io.BytesIO(request.get_data())).convert("L").resize((28, 28), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, np.float32) / 255.0)[None, None]
    with torch.no_grad():
        probs = CNN(x)[0]
    best = int(probs.argmax())
    return answer("fashion", [{"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": [LABELS[best]]},
                              {"name": "score", "datatype": "FP32", "shape": [1, 1], "data": [float(probs[best])]},
                              {"name": "probs", "datatype": "FP32", "shape": [1, 10], "data": probs.tolist()}])
