"""core.serving.worker: one thread for all work, requests before background work, errors to the caller."""
import inspect
import threading
import time

import pytest

from core.serving.worker import BACKGROUND, REQUEST, Worker


def test_every_job_runs_on_one_thread_whoever_calls():
    w = Worker()
    names = []

    def call():
        names.append(w.run(lambda: threading.current_thread().name))
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert names == [w.name] * 8 and threading.current_thread().name != w.name


def test_requests_go_before_queued_background_work():
    w = Worker()
    gate, order = threading.Event(), []
    w.submit(gate.wait, priority=BACKGROUND)  # occupies the thread until released
    futures = [w.submit(order.append, f"warm {i}", priority=BACKGROUND) for i in range(3)]
    futures += [w.submit(order.append, f"request {i}", priority=REQUEST) for i in range(2)]
    gate.set()
    for f in futures:
        f.result(timeout=10)
    assert order == ["request 0", "request 1", "warm 0", "warm 1", "warm 2"]


def test_an_exception_reaches_the_caller_and_the_worker_goes_on():
    w = Worker()

    def boom():
        raise KeyError("bad")
    with pytest.raises(KeyError, match="bad"):
        w.run(boom)
    assert w.run(lambda: 7) == 7


def test_a_job_may_call_the_worker_again_without_deadlock():
    w = Worker()
    assert w.submit(lambda: w.run(lambda: 3) + 1).result(timeout=10) == 4


def test_wrap_keeps_the_signature_gradio_reads():
    def handler(image, plain, residual="resnet20"):
        return image, plain, residual, threading.current_thread().name
    w = Worker()
    wrapped = w.wrap(handler)
    assert inspect.signature(wrapped) == inspect.signature(handler) and wrapped.__name__ == "handler"
    assert wrapped(1, 2) == (1, 2, "resnet20", w.name)


def test_nothing_runs_until_the_first_job():
    before = threading.active_count()
    w = Worker()
    time.sleep(0.05)
    assert threading.active_count() == before and w._thread is None


def test_a_forked_child_gets_a_worker_thread_of_its_own():
    """A fork copies the Worker but not its thread; without a thread of its own the child would wait
    forever for its job."""
    import multiprocessing as mp
    import queue

    w = Worker()
    assert w.run(lambda: 1) == 1  # the parent's thread is running
    ctx = mp.get_context("fork")
    answers = ctx.Queue()
    child = ctx.Process(target=lambda: answers.put(w.run(lambda: threading.current_thread().name)))
    child.start()
    try:
        assert answers.get(timeout=30) == w.name
    except queue.Empty:
        pytest.fail("the forked child's job never ran")
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
