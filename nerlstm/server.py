"""`nerlstm serve`: the Python API over HTTP, on uvicorn and starlette.

``POST /tag`` takes ``{"text": "..."}`` and answers what ``nerlstm.load(model)(text)``
returns, as JSON (:meth:`nerlstm.results.TaggedText.to_dict`); ``{"texts": [...]}`` answers
a list of those, as ``tagger.pipe(texts)``. An optional ``"scores": false`` leaves the
entities' probabilities out (null), as the API's ``scores=False``. ``GET /health`` answers
``{"status": "ok"}``, ``GET /info`` the model's description.

Requests that arrive while the model is busy wait together and are tagged in one batch
when it is free (up to the tagger's threads batches at once): under load, one network call
serves many requests. Bad input gets a 4xx
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
    single: bool  # answer the one result, not a list
    scores: bool
    future: asyncio.Future


def json_bytes(values) -> bytes:
    """``values`` as JSON, as starlette's JSONResponse renders it."""
    return json.dumps(values, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


class Batcher:
    """Tags the texts of requests that wait together in one call, on threads beside the
    event loop (the network releases the GIL while it runs); each answer leaves that thread
    as the JSON bytes to send, so that the event loop only moves bytes.

    Up to ``concurrency`` calls run at once, each on its own thread: while one is in the
    network, another's Python work (tokenizer, CRF, JSON) has the GIL, so that two cores
    serve one process."""

    def __init__(self, tagger, batch_texts: int = BATCH_TEXTS, concurrency: int = 1) -> None:
        self.tagger = tagger
        self.batch_texts = batch_texts
        self.concurrency = max(1, concurrency)
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="nerlstm-tag")
        self.batches = 0  # calls made, for /info

    async def tag(self, texts: list[str], single: bool, scores: bool) -> bytes:
        """The JSON answer: the one result where ``single``, else the list of them."""
        job = Job(texts, single, scores, asyncio.get_running_loop().create_future())
        self.queue.put_nowait(job)
        return await job.future

    async def run(self) -> None:
        free = asyncio.Semaphore(self.concurrency)
        running = set()
        while True:
            jobs = [await self.queue.get()]
            # the batch is gathered once a thread is free: it takes all that waited meanwhile
            await free.acquire()
            count = len(jobs[0].texts)
            while not self.queue.empty() and count < self.batch_texts:
                jobs.append(self.queue.get_nowait())
                count += len(jobs[-1].texts)
            self.batches += 1
            task = asyncio.create_task(self._answer(jobs, free))
            running.add(task)  # a task only weakly referenced may be collected
            task.add_done_callback(running.discard)

    async def _answer(self, jobs: list[Job], free: asyncio.Semaphore) -> None:
        try:
            answers = await asyncio.get_running_loop().run_in_executor(
                self.executor, self._tag_jobs, jobs)
        except Exception as error:  # a bug: each waiting request answers 500
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        finally:
            free.release()
        for job, answer in zip(jobs, answers):
            if not job.future.done():  # a client that went away cancelled its future
                job.future.set_result(answer)

    def _tag_jobs(self, jobs: list[Job]) -> list[bytes]:
        texts = [text for job in jobs for text in job.texts]
        results = iter(self.tagger.pipe(texts, scores=any(job.scores for job in jobs)))
        answers = []
        for job in jobs:
            own = [next(results).to_dict(job.scores) for _ in job.texts]
            answers.append(json_bytes(own[0] if job.single else own))
        return answers

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class Disconnected(Exception):
    """The client went away before its request's body was read."""


async def read_body(scope, receive, limit: int) -> bytes:
    """An ASGI request's body, refused with 413 past ``limit`` bytes (before reading it
    all)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BadRequest(413, f"request body of {int(value):,} bytes: the limit is "
                                  f"{limit:,} (see serve --max-body)")
    message = await receive()
    body = message.get("body", b"")
    if message.get("more_body"):  # chunked, or large: gathered up to the limit
        gathered = bytearray(body)
        while message.get("more_body") and len(gathered) <= limit:
            message = await receive()
            gathered += message.get("body", b"")
        body = bytes(gathered)
    if message["type"] == "http.disconnect":
        raise Disconnected
    if len(body) > limit:
        raise BadRequest(413, f"request body over {limit:,} bytes (see serve --max-body)")
    return body


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
               max_texts: int = MAX_TEXTS, batch_texts: int = BATCH_TEXTS,
               concurrency: int | None = None):
    """The ASGI application serving ``tagger`` (a :class:`nerlstm.api.TextTagger`), with up
    to ``concurrency`` network calls at once (None: the tagger's threads)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if concurrency is None:
        concurrency = getattr(getattr(tagger, "_tagger", None), "workers", 1)
    batcher = Batcher(tagger, batch_texts, concurrency)
    info = {**model_info(model_path, tagger),
            "limits": {"max_body_bytes": max_body, "max_texts": max_texts}}

    tag = TagEndpoint(batcher, max_body, max_texts)

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

    routes = Starlette(routes=[Route("/tag", tag, methods=["POST"]),
                               Route("/health", health, methods=["GET"]),
                               Route("/info", describe, methods=["GET"])],
                       exception_handlers={HTTPException: http_error}, lifespan=lifespan)

    async def app(scope, receive, send) -> None:
        # POST /tag straight to its handler, past starlette's routing and middleware; the
        # rest (and the other methods on /tag: 405) through starlette
        if scope["type"] == "http" and scope["path"] == "/tag" and scope["method"] == "POST":
            await tag(scope, receive, send)
        else:
            await routes(scope, receive, send)

    return app


class TagEndpoint:
    """``POST /tag`` as a plain ASGI app (a class, so that starlette's ``Route`` takes it as
    one): a request and its answer pass through no Request, Response or middleware objects."""

    def __init__(self, batcher: Batcher, max_body: int, max_texts: int) -> None:
        self.batcher, self.max_body, self.max_texts = batcher, max_body, max_texts

    async def __call__(self, scope, receive, send) -> None:
        try:
            body = await read_body(scope, receive, self.max_body)
            texts, single, scores = parse_request(body, self.max_texts)
        except BadRequest as refusal:
            await send_json(send, refusal.status, json_bytes({"error": refusal.message}))
            return
        except Disconnected:
            return
        await send_json(send, 200, await self.batcher.tag(texts, single, scores))


async def send_json(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode("ascii"))]})
    await send({"type": "http.response.body", "body": body})


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
    # uvicorn picks httptools and uvloop where installed (the serve extra installs them);
    # no proxy headers: nothing here reads the client's address
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            proxy_headers=False)
    server = uvicorn.Server(config)
    # uvicorn answers SIGTERM by finishing what is in flight, then raises the signal again
    # for the handler it found: this one, so that the process then exits 0. It stays: a
    # second SIGTERM while the process ends must not kill it either.
    signal.signal(signal.SIGTERM, lambda number, frame: None)
    server.run(sockets=[sock])
