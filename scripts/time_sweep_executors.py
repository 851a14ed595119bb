"""Time one 8-point grid under each executor: in-process, process pool, Ray (issue 17).

Ray listens on every interface, so this runs only where loopback is the sole interface:

    unshare --net sh -c 'ip link set lo up && exec python scripts/time_sweep_executors.py'

Prints wall seconds per executor (Ray with and without its start-up) and checks that the
three give identical numbers.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

GRID = {"sparsity": [0.5, 0.9], "scope": ["layer", "global"], "finetune_epochs": [0, 1]}


def main() -> int:
    others = [name for _, name in socket.if_nameindex() if name != "lo"]
    if others:
        print(f"refusing: this namespace has {', '.join(others)}; run it under unshare --net",
              file=sys.stderr)
        return 2
    import ray
    import torch

    from explorer import Session
    from explorer.studies.sweep import sweep

    torch.set_num_threads(1)
    session = Session("digits", "mlp", device="cpu")
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    runs, rows = {}, {}

    def timed(name: str, **kwargs) -> None:
        start = time.perf_counter()
        table = sweep(session, GRID, **kwargs)
        runs[name] = round(time.perf_counter() - start, 1)
        rows[name] = [{k: v for k, v in r.items() if k != "seconds"} for r in table.rows]

    timed("in-process (workers=0)", workers=0)
    timed(f"process pool (workers={workers})", workers=workers)
    timed(f"ray, local instance started and stopped (workers={workers})", executor="ray",
          workers=workers, warn=lambda m: None)
    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, num_cpus=workers, log_to_driver=False)
    runs["ray start-up alone (ray.init)"] = round(time.perf_counter() - start, 1)
    timed(f"ray, already running ({workers} CPUs)", executor="ray")
    ray.shutdown()
    reference = next(iter(rows.values()))
    same = all(r == reference for r in rows.values())
    print(json.dumps({"grid": GRID, "points": len(reference), "seconds": runs,
                      "identical_numbers": same, "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()}, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
