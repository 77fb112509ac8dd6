"""The implementations the benchmarks compare (impls.py, in process) and the
hivex peer (hivex_worker.py, out of process under /usr/bin/python3, driven by
hivex_client.py)."""
