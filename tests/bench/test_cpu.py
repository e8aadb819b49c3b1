"""CPU accounting: a process's main thread is told apart from its other threads."""

from __future__ import annotations

import threading
import time

import psutil
from bench.cpu import main_thread_cpu_seconds, tree_cpu_seconds


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_work_on_another_thread_is_not_the_main_threads() -> None:
    me = [psutil.Process()]
    main_before, all_before = main_thread_cpu_seconds(me), tree_cpu_seconds(me)
    worker = threading.Thread(target=_spin, args=(0.3,))
    worker.start()
    worker.join()
    main_used = main_thread_cpu_seconds(me) - main_before
    all_used = tree_cpu_seconds(me) - all_before
    assert all_used >= 0.25
    assert main_used < 0.1


def test_work_on_the_main_thread_is_counted() -> None:
    me = [psutil.Process()]
    before = main_thread_cpu_seconds(me)
    _spin(0.3)
    assert main_thread_cpu_seconds(me) - before >= 0.25
