"""`nerlstm serve`: the Python API over HTTP, on uvicorn and starlette.

``POST /tag`` takes ``{"text": "..."}`` and answers what ``nerlstm.load(model)(text)``
returns, as JSON (:meth:`nerlstm.results.TaggedText.to_dict`); ``{"texts": [...]}`` answers
a list of those, as ``tagger.pipe(texts)``. An optional ``"scores": false`` leaves the
entities' probabilities out (null), as the API's ``scores=False``. ``GET /health`` answers
``{"status": "ok"}``, ``GET /info`` the model's description.

Requests that arrive while the model is busy wait together and are tagged in one batch
when it is free: under load, one network call serves many requests. Bad input gets a 4xx
answer with ``{"error": message}``: 400 for a body that is not JSON, 413 for a body over
the size limit, 422 for JSON of the wrong shape or too many texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nerlstm import __version__
from nerlstm.errors import NerlstmError

MAX_BODY_BYTES = 1 << 20  # one MiB: a few hundred pages of text
MAX_TEXTS = 256           # texts in one request
BATCH_TEXTS = 1024        # requests waiting together are tagged in batches of at most this


def require_server() -> None:
    """Raise a one-line error where the server's packages are missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise NerlstmError("serve needs uvicorn and starlette: pip install 'nerlstm[serve]'",
                           exit_code=1) from None


class BadRequest(Exception):
    """Input the server refuses: its status code and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Job:
    texts: list[str]
    scores: bool
    future: asyncio.Future


class Batcher:
    """Tags the texts of requests that wait together in one call, on one thread beside the
    event loop (the network releases the GIL while it runs)."""

    def __init__(self, tagger, batch_texts: int = BATCH_TEXTS) -> None:
        self.tagger = tagger
        self.batch_texts = batch_texts
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="nerlstm-tag")
        self.batches = 0  # calls made, for /info

    async def tag(self, texts: list[str], scores: bool) -> list[dict]:
        job = Job(texts, scores, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            count = len(jobs[0].texts)
            while not self.queue.empty() and count < self.batch_texts:
                jobs.append(self.queue.get_nowait())
                count += len(jobs[-1].texts)
            try:
                answers = await loop.run_in_executor(self.executor, self._tag_jobs, jobs)
            except Exception as error:  # a bug: each waiting request answers 500
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, answer in zip(jobs, answers):
                if not job.future.done():  # a client that went away cancelled its future
                    job.future.set_result(answer)

    def _tag_jobs(self, jobs: list[Job]) -> list[list[dict]]:
        self.batches += 1
        texts = [text for job in jobs for text in job.texts]
        results = iter(self.tagger.pipe(texts, scores=any(job.scores for job in jobs)))
        answers = []
        for job in jobs:
            own = [next(results).to_dict() for _ in job.texts]
            if not job.scores:
                for result in own:
                    for entity in result["entities"]:
                        entity["score"] = None
            answers.append(own)
        return answers

    def close(self) -> None:
        self.executor.shutdown(wait=True)


async def read_body(request, limit: int) -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"request body of {int(declared):,} bytes: the limit is "
                              f"{limit:,} (see serve --max-body)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, f"request body over {limit:,} bytes (see serve --max-body)")
    return bytes(body)


def parse_request(body: bytes, max_texts: int) -> tuple[list[str], bool, bool]:
    """(texts, one text given, scores wanted) from a /tag body, or BadRequest."""
    try:
        values = json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not UTF-8 text") from None
    except ValueError as error:
        raise BadRequest(400, f"the body is not JSON: {error}") from None
    except RecursionError:
        raise BadRequest(400, "the body is not JSON this server reads: nested too deep") from None
    if not isinstance(values, dict):
        raise BadRequest(422, 'expected a JSON object: {"text": "..."} or {"texts": [...]}')
    unknown = sorted(set(values) - {"text", "texts", "scores"})
    if unknown:
        raise BadRequest(422, f"unknown field {unknown[0]!r}: expected text or texts, and "
                              f"optionally scores")
    if ("text" in values) == ("texts" in values):
        raise BadRequest(422, 'expected one of "text" (a string) or "texts" (a list of '
                              'strings)')
    scores = values.get("scores", True)
    if not isinstance(scores, bool):
        raise BadRequest(422, '"scores" must be true or false')
    if "text" in values:
        if not isinstance(values["text"], str):
            raise BadRequest(422, f'"text" must be a string, not '
                                  f"{type(values['text']).__name__}")
        _check_encodable(values["text"], '"text"')
        return [values["text"]], True, scores
    texts = values["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f'"texts" must be a list of strings, not {type(texts).__name__}')
    if len(texts) > max_texts:
        raise BadRequest(422, f"{len(texts):,} texts: at most {max_texts:,} in one request "
                              f"(see serve --max-texts)")
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(422, f'"texts"[{number}] must be a string, not '
                                  f"{type(text).__name__}")
        _check_encodable(text, f'"texts"[{number}]')
    return texts, False, scores


def _check_encodable(text: str, where: str) -> None:
    """Refuse a string that no UTF-8 answer could hold (a lone surrogate escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise BadRequest(422, f"{where} holds an unpaired surrogate at character "
                              f"{error.start}") from None


def model_info(path: str, tagger) -> dict:
    """What ``GET /info`` answers: the model's file, format, labels and config."""
    facts = {"model": os.path.basename(path), "nerlstm_version": __version__,
             "format": "onnx" if path.lower().endswith(".onnx") else "torch",
             "labels": tagger.labels, "tokenizer": tagger.tokenizer,
             "config": tagger.config.to_dict()}
    return facts


def create_app(tagger, *, model_path: str = "", max_body: int = MAX_BODY_BYTES,
               max_texts: int = MAX_TEXTS, batch_texts: int = BATCH_TEXTS):
    """The ASGI application serving ``tagger`` (a :class:`nerlstm.api.TextTagger`)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    batcher = Batcher(tagger, batch_texts)
    info = {**model_info(model_path, tagger),
            "limits": {"max_body_bytes": max_body, "max_texts": max_texts}}

    async def tag(request):
        try:
            body = await read_body(request, max_body)
            texts, single, scores = parse_request(body, max_texts)
        except BadRequest as refusal:
            return JSONResponse({"error": refusal.message}, status_code=refusal.status)
        results = await batcher.tag(texts, scores)
        return JSONResponse(results[0] if single else results)

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def describe(request):
        return JSONResponse({**info, "batches": batcher.batches})

    async def http_error(request, error: HTTPException):
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        runner = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            runner.cancel()
            batcher.close()

    return Starlette(routes=[Route("/tag", tag, methods=["POST"]),
                             Route("/health", health, methods=["GET"]),
                             Route("/info", describe, methods=["GET"])],
                     exception_handlers={HTTPException: http_error}, lifespan=lifespan)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port), or a one-line error."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        # the protocol named: asyncio sets TCP_NODELAY on connections only where the
        # listening socket says IPPROTO_TCP, and without it every answer on a keep-alive
        # connection waited 40 ms for the client's delayed ACK
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        raise NerlstmError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                           exit_code=1) from None
    return sock


def serve(tagger, sock: socket.socket, *, model_path: str, max_body: int = MAX_BODY_BYTES,
          max_texts: int = MAX_TEXTS) -> None:
    """Serve until SIGTERM or SIGINT: the requests in flight are answered, then it returns
    (SIGINT then raises KeyboardInterrupt, SIGTERM does not). For a command's main thread:
    it leaves SIGTERM ignored."""
    import uvicorn

    app = create_app(tagger, model_path=model_path, max_body=max_body, max_texts=max_texts)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn answers SIGTERM by finishing what is in flight, then raises the signal again
    # for the handler it found: this one, so that the process then exits 0. It stays: a
    # second SIGTERM while the process ends must not kill it either.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    server.run(sockets=[sock])
