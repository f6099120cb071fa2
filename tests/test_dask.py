"""nerlstm.dask on a real LocalCluster: two worker processes on loopback give what one
process gives."""

import importlib
import sys

import pytest

pytest.importorskip("distributed")
pytest.importorskip("pandas")

import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import nerlstm  # noqa: E402
from nerlstm.dask import tag_bag, tag_series, tag_texts  # noqa: E402

TEXTS = [f"Peter Blackburn visited Paris on day {n}.\nThe EU met Smith in Bonn. "
         f"Reuters said {n} people came to the {['Kremlin', 'White House', 'UN'][n % 3]}."
         for n in range(24)] + ["", "   "]


def expected(model) -> list[dict]:
    """Each text tagged in this process, as `tag -f jsonl` writes it."""
    results = [tagged.to_dict() for tagged in nerlstm.load(model, threads=1).pipe(TEXTS)]
    for values in results:
        for entity in values["entities"]:
            entity["score"] = round(entity["score"], 4)
    return results


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        yield client


def test_a_bag_on_two_worker_processes_equals_one_process(client, trained_model):
    want = expected(trained_model)
    assert any(values["entities"] for values in want)
    bag = tag_bag(db.from_sequence(TEXTS, npartitions=6), trained_model)
    assert bag.compute() == want
    # each worker process loaded the model once, and keeps it by its path
    cached = client.run(lambda: sorted(sys.modules["nerlstm.dask"]._taggers))
    assert set(map(tuple, cached.values())) <= {(str(trained_model.resolve()),)}
    assert any(cached.values())


def test_a_dataframe_column_on_two_worker_processes_equals_one_process(client, trained_model):
    frame = dd.from_pandas(pd.DataFrame({"text": TEXTS}, index=range(100, 126)),
                           npartitions=4)
    column = tag_series(frame["text"], trained_model).compute()
    assert list(column.index) == list(range(100, 126))
    assert list(column) == expected(trained_model)


def test_tag_texts_in_this_process(trained_model):
    assert tag_texts(TEXTS[:3], trained_model) == expected(trained_model)[:3]


def test_without_dask_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.bag", None)
    monkeypatch.delitem(sys.modules, "nerlstm.dask")
    with pytest.raises(ImportError, match=r"^nerlstm.dask needs dask: pip install "
                                          r"'nerlstm\[dask\]'$"):
        importlib.import_module("nerlstm.dask")
