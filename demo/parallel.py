"""Generating the rows in a forked child process while this one writes them.

Generation and writing each take about half the time of a load; on two cores doing both at
once nearly halves it. The child is a fork, so it starts with the very generator the parent
built (same random state, same starting ids) and the rows are the same either way; batches
come back through a queue of two so that memory stays bounded."""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import sys
import traceback

from demo.related import Generator


def batches(generator: Generator, customers: int, batch: int):
    """(customers in the batch, rows by table, document sequences after it), in order."""
    done = 0
    while done < customers:
        n = min(batch, customers - done)
        rows = generator.batch(done, n)
        done += n
        yield n, rows, dict(generator.seq)


def can_fork() -> bool:
    """Generate in a child process when a core is free for it (CRM_SEED_PARALLEL=0/1 forces)."""
    forced = os.environ.get("CRM_SEED_PARALLEL")
    possible = sys.platform.startswith("linux") and "fork" in \
        multiprocessing.get_all_start_methods()
    if forced is not None:
        return possible and forced not in ("0", "", "false", "no")
    cores = os.cpu_count() or 1
    return possible and cores > 1 and os.getloadavg()[0] <= cores - 1


def _child(generator: Generator, customers: int, batch: int, queue) -> None:
    try:
        for item in batches(generator, customers, batch):
            queue.put(item)
        queue.put(None)
    except BaseException:  # noqa: BLE001  (reported to the parent)
        queue.put(("error", traceback.format_exc(), None))
    queue.close()
    queue.join_thread()


def batches_in_child(generator: Generator, customers: int, batch: int):
    """The batches of ``batches``, made in a forked process (bounded queue of 2)."""
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=2)
    process = context.Process(target=_child, args=(generator, customers, batch, channel),
                              daemon=True, name="demo-seed-generator")
    process.start()
    try:
        while True:
            try:
                item = channel.get(timeout=5)
            except queues.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"The seed generator process died (exit code {process.exitcode})."
                    ) from None
                continue
            if item is None:
                break
            if item[0] == "error":
                raise RuntimeError(f"The seed generator failed:\n{item[1]}")
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
