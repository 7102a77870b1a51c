"""The recommendation use case, examples/recommend/models/recommend: a user id in, the names and scores of the
top 10 items of the 12,000-item catalogue out, never one the user has interacted with. The oracle: numpy over
the factors read from the committed TorchScript file, with the seen items taken from the seeded generator
(examples/recommend/make_recommend_model.py), not from the model; and the label backend's ids mode."""
import importlib.util
import time

import numpy as np
import pytest

from conftest import EXAMPLES, Server, write_model

RECOMMEND = EXAMPLES.parent / "recommend"
MODELS = RECOMMEND / "models"
NAMES = (MODELS / "recommend_items" / "items.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    link = tmp_path_factory.mktemp("recommend") / "models"
    link.symlink_to(MODELS)
    s = Server(link)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("make_recommend_model", RECOMMEND / "make_recommend_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    per_user, names, _ = module.interactions()
    assert names == NAMES  # the committed catalogue is the generator's
    return per_user


@pytest.fixture(scope="module")
def factors():
    import torch
    buffers = dict(torch.jit.load(str(MODELS / "recommend_mf" / "1" / "model.pt")).named_buffers())
    return {k: buffers[k].numpy().astype(np.float64) for k in ("users", "items", "bias")}


def oracle(factors, user, seen):
    """numpy: every item's score for the user (bias alone for an unknown user), seen items removed, top 10."""
    users = factors["users"]
    known = 0 <= user < len(users)
    scores = (factors["items"] @ users[user] if known else 0.0) + factors["bias"]
    if known:
        scores[seen[user]] = -np.inf
    top = np.argsort(-scores, kind="stable")[:10]
    return scores, top


def answer(server, users):
    r = server.infer("recommend", [{"name": "user", "datatype": "INT64", "shape": [len(users), 1], "data": users}])
    assert r.status_code == 200, r.text[:300]
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["items"]["datatype"] == "BYTES" and out["items"]["shape"] == [len(users), 10]
    assert out["scores"]["datatype"] == "FP32" and out["scores"]["shape"] == [len(users), 10]
    return (np.asarray(out["items"]["data"], object).reshape(-1, 10),
            np.asarray(out["scores"]["data"], np.float64).reshape(-1, 10))


def check(factors, per_user, user, items, scores):
    want_scores, want_top = oracle(factors, user, per_user)
    ids = [NAMES.index(n) for n in items]
    # The top 10 up to float rounding: the same scores in order, each the oracle's score of the item named.
    np.testing.assert_allclose(scores, want_scores[want_top], atol=1e-4, rtol=0)
    np.testing.assert_allclose(want_scores[ids], scores, atol=1e-4, rtol=0)
    assert len(set(ids)) == 10


@pytest.mark.torch
def test_top_10_equal_numpy_and_never_an_item_seen(server, generator, factors):
    rng = np.random.default_rng(7)
    users = [int(u) for u in rng.choice(len(generator), 256, replace=False)]
    for i in range(0, len(users), 64):  # batches of 64, the model's max_batch_size
        items, scores = answer(server, users[i:i + 64])
        for row, user in enumerate(users[i:i + 64]):
            seen = {NAMES[j] for j in generator[user]}
            assert not seen & set(items[row]), f"user {user} was recommended an item already seen"
            check(factors, generator, user, items[row], scores[row])


@pytest.mark.torch
def test_a_batch_equals_one_request_per_user_and_unknown_users_get_popular_items(server, generator, factors):
    users = [0, 3999, 17, -1, 4000, 10**12]
    items, scores = answer(server, users)
    for row, user in enumerate(users):
        one_items, one_scores = answer(server, [user])
        assert list(one_items[0]) == list(items[row])
        np.testing.assert_allclose(one_scores[0], scores[row], atol=1e-6)
        check(factors, generator, user, items[row], scores[row])
    assert list(items[3]) == list(items[4]) == list(items[5])  # unknown: by the learned item bias alone


@pytest.mark.torch
def test_bad_requests_get_clear_errors(server):
    r = server.infer("recommend", [{"name": "user", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}])
    assert r.status_code == 400 and "INT64" in r.text
    r = server.infer("recommend_items", [{"name": "ids", "datatype": "INT64", "shape": [1, 10],
                                          "data": [1, 2, 3, 4, 5, 6, 7, 8, 9, 12000]}])
    assert r.status_code == 400
    assert r.json()["error"].endswith("input 'ids': element 9: id 12000 is not one of the 12000 names")
    assert server.get("/v2/health/live").status_code == 200


def test_the_label_backend_names_ids(tmp_path, start_server):
    repo = tmp_path / "models"
    names = {"names.txt": b"zero\none\ntwo\r\n"}
    write_model(repo, "ids", "backend: label\nmax_batch_size: 4\nparameters: {labels: names.txt}\n"
                "inputs:\n  - {name: ids, datatype: INT64, shape: [2]}\n"
                "outputs:\n  - {name: names, datatype: BYTES, shape: [2]}\n", files=names)
    write_model(repo, "gap", "backend: label\ninputs:\n  - {name: ids, datatype: INT64, shape: [2]}\n"
                "outputs:\n  - {name: names, datatype: BYTES, shape: [2]}\n", files={"labels.txt": b"a\n\nb\n"})
    write_model(repo, "wrong_shape", "backend: label\nparameters: {labels: names.txt}\n"
                "inputs:\n  - {name: ids, datatype: INT64, shape: [2]}\n"
                "outputs:\n  - {name: names, datatype: BYTES, shape: [1]}\n", files=names)
    s = start_server(repo, wait_ready=False)
    for _ in range(100):
        index = {m["name"]: m for m in s.post("/v2/repository/index").json()}
        if [index[m].get("state") for m in ("ids", "gap", "wrong_shape")] == ["READY", "UNAVAILABLE", "UNAVAILABLE"]:
            break
        time.sleep(0.1)
    r = s.infer("ids", [{"name": "ids", "datatype": "INT64", "shape": [2, 2], "data": [2, 0, 1, 1]}])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0] == {"name": "names", "datatype": "BYTES", "shape": [2, 2],
                                      "data": ["two", "zero", "one", "one"]}
    r = s.infer("ids", [{"name": "ids", "datatype": "INT64", "shape": [1, 2], "data": [0, -1]}])
    assert r.status_code == 400 and "element 1: id -1 is not one of the 3 names" in r.text
    assert "labels.txt: line 2 is empty (one name per id)" in index["gap"]["reason"]
    assert "BYTES [2] (their names)" in index["wrong_shape"]["reason"]
