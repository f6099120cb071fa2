"""nerlstm serve, started for real on a free loopback port and stopped by the tests."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import DATA, run_cli

pytest.importorskip("uvicorn", reason="the serve extra (pip install 'nerlstm[serve]')")
pytest.importorskip("starlette", reason="the serve extra (pip install 'nerlstm[serve]')")
pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'nerlstm[onnx]')")

import nerlstm  # noqa: E402
from nerlstm.conll import read_conll  # noqa: E402

TEXT = "Peter Blackburn visited Paris, where the European Commission met on Monday."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A `nerlstm serve` process on loopback."""

    def __init__(self, model, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.terminated = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nerlstm", "serve", "-m", str(model), "--port",
             str(self.port), "--threads", "1", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read())
            try:
                if self.get("/health") == (200, {"status": "ok"}):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("the server did not answer within 60 s")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, object]:
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, values) -> tuple[int, object]:
        body = values if isinstance(values, bytes) else json.dumps(values).encode()
        return self.request("POST", "/tag", body, {"Content-Type": "application/json"})

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.terminated = True

    def stop(self) -> int:
        if self.process.poll() is None and not self.terminated:
            self.terminate()
        code = self.process.wait(timeout=30)
        self.process.stdout.close()
        self.process.stderr.close()
        return code


@pytest.fixture(scope="module")
def onnx_model(trained_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "model.onnx"
    assert run_cli("export", "-m", trained_model, "-o", path).exit_code == 0
    return path


@pytest.fixture(scope="module")
def server(onnx_model):
    running = Server(onnx_model, "--max-body", "20000", "--max-texts", "40")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def local(onnx_model):
    return nerlstm.load(onnx_model, threads=1)


def test_health_and_info(server):
    assert server.get("/health") == (200, {"status": "ok"})
    status, info = server.get("/info")
    assert status == 200
    assert info["model"] == "model.onnx" and info["format"] == "onnx"
    assert info["labels"] == ["LOC", "MISC", "ORG", "PER"] and info["tokenizer"] == "default"
    assert info["limits"] == {"max_body_bytes": 20000, "max_texts": 40}


def test_tag_answers_what_the_python_api_returns(server, local):
    assert server.post({"text": TEXT}) == (200, json.loads(json.dumps(local(TEXT).to_dict())))
    texts = [TEXT, "", "EU rejects German call .\nPeter Blackburn"]
    expected = [r.to_dict() for r in local.pipe(texts)]
    assert server.post({"texts": texts}) == (200, json.loads(json.dumps(expected)))
    expected = [r.to_dict() for r in local.pipe(texts, scores=False)]
    assert server.post({"texts": texts, "scores": False}) == (200, expected)
    assert server.post({"texts": []}) == (200, [])


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "the body is not JSON"),
    (b"\xff\xfe\x00", 400, "the body is not"),
    (b"[" * 5000, 400, "the body is not JSON"),
    (b"", 400, "the body is not JSON"),
    (b"[1, 2]", 422, "expected a JSON object"),
    (b'"text"', 422, "expected a JSON object"),
    (b"{}", 422, 'expected one of "text"'),
    (b'{"text": "a", "texts": ["b"]}', 422, 'expected one of "text"'),
    (b'{"text": 3}', 422, '"text" must be a string, not int'),
    (b'{"text": null}', 422, '"text" must be a string, not NoneType'),
    (b'{"texts": "a"}', 422, '"texts" must be a list of strings'),
    (b'{"texts": ["a", 2]}', 422, '"texts"[1] must be a string'),
    (b'{"text": "a", "language": "en"}', 422, "unknown field 'language'"),
    (b'{"text": "a", "scores": "yes"}', 422, '"scores" must be true or false'),
    (b'{"text": "\\ud800 Paris"}', 422, "unpaired surrogate"),
    (json.dumps({"texts": ["a"] * 41}).encode(), 422, "41 texts: at most 40"),
    (json.dumps({"text": "Paris " * 4000}).encode(), 413, "the limit is 20,000"),
])
def test_bad_requests_answer_4xx_with_a_message(server, body, status, message):
    answer_status, answer = server.post(body)
    assert answer_status == status and message in answer["error"], answer


def test_wrong_paths_and_methods(server):
    assert server.get("/tag")[0] == 405
    assert server.get("/nothing")[0] == 404
    assert server.request("POST", "/health", b"{}")[0] == 405


def test_a_body_over_the_limit_without_a_length_is_refused(server):
    # sent in chunks, with no Content-Length to refuse it by
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /tag HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(30):
            sock.sendall(b"3e8\r\n" + b"a" * 1000 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(65536) or b"}"
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "over 20,000 bytes" in answer


@pytest.fixture(scope="module")
def two_threads(onnx_model):
    running = Server(onnx_model, "--threads", "2")
    yield running
    assert running.stop() == 0


@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_answers_equal_sequential_ones(request, threads):
    # with --threads 2, two network calls run at once
    server = request.getfixturevalue("server" if threads == 1 else "two_threads")
    sentences = [" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt"))[:64]]
    bodies = [{"text": sentence} for sentence in sentences]
    bodies += [{"texts": sentences[n:n + 5]} for n in range(0, 60, 5)]
    sequential = [server.post(body) for body in bodies]
    batches_before = server.get("/info")[1]["batches"]
    with ThreadPoolExecutor(32) as pool:
        concurrent = list(pool.map(server.post, bodies))
    # the same tags and spans; probabilities to float32 rounding (a batch of other shapes
    # sums in another order)
    assert rounded(concurrent) == rounded(sequential)
    assert all(status == 200 for status, _ in concurrent)
    # requests that arrived together shared a network call
    assert server.get("/info")[1]["batches"] - batches_before < len(bodies)


def test_results_to_dict_is_the_plain_asdict_in_order(local):
    """to_dict builds the answer field by field; dataclasses.asdict is the plain reference."""
    from dataclasses import asdict

    from nerlstm.results import TaggedText

    results = [*local.pipe([TEXT, "", "EU rejects German call ."]),
               TaggedText("EU", document=3, line=7)]
    for result in results:
        plain = asdict(result)
        for key in ("document", "line"):
            if plain[key] is None:
                del plain[key]
        expected = {key: plain[key] for key in ("text", "document", "line", "entities", "tokens")
                    if key in plain}
        assert json.dumps(result.to_dict()) == json.dumps(expected)
        for entity in expected["entities"]:
            entity["score"] = None
        assert result.to_dict(scores=False) == expected


def rounded(answers: list) -> list:
    def each(result: dict) -> dict:
        return {**result, "entities": [{**e, "score": round(e["score"], 4)}
                                       for e in result["entities"]]}

    return [(status, [each(r) for r in body] if isinstance(body, list) else each(body))
            for status, body in answers]


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(onnx_model):
    running = Server(onnx_model)
    document = "\n".join(" ".join(s.tokens) for s in read_conll(str(DATA / "test.txt")))
    answers = []

    def post() -> None:
        status, results = running.post({"texts": [document] * 25, "scores": False})
        answers.append((status, len(results), time.monotonic()))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    signalled = time.monotonic()
    running.terminate()
    for thread in threads:
        thread.join(timeout=120)
    assert running.stop() == 0
    assert [(status, count) for status, count, _ in answers] == [(200, 25)] * 4
    assert max(when for _, _, when in answers) > signalled  # some were still in flight


def test_serves_a_torch_model_too(trained_model, local):
    running = Server(trained_model)
    try:
        status, result = running.post({"text": TEXT, "scores": False})
        assert status == 200 and result == local(TEXT, scores=False).to_dict()
        assert running.get("/info")[1]["format"] == "torch"
    finally:
        assert running.stop() == 0


def test_serve_errors_are_one_line(trained_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", "-m", trained_model, "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    result = run_cli("serve", "-m", DATA / "absent.pt", "--port", "0")
    assert result.exit_code == 1 and "no such model file" in result.stderr
