"""Helper processes the tests start: waiting for one to answer, and stopping it by its PID (SIGTERM first,
SIGKILL after `timeout`)."""
import signal
import subprocess
import time

import requests


def stop_process(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http_ok(url, proc, log_path, timeout=30):
    """Until GET `url` answers 200; fails with the process's log if it exits or `timeout` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"{url} did not answer 200 (exit code {proc.poll()}):\n{open(log_path).read()}")
        time.sleep(0.05)
